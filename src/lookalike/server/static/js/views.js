// The view registry: every tab of the page is a registered view, and the viewer has extension points.
//
//   registerView({ id: "people", label: "People", mount(panel) {...}, show(params) {...}, hash() {...} })
//     adds a tab; `panel` is <section id="panel-ID"> (made here when the page has none). `show` runs each time
//     the view is selected; the page opens on a view with #view=ID (its other URL parameters are in `params`);
//     `hash()` (optional) gives the URL that stands for the view's current state (default #view=ID).
//   registerViewerSection((image, slot) => {...})
//     called whenever the viewer shows a photo; `slot` is the viewer's <div data-slot="NAME"> named by
//     `{slot: "teach"}` (or a new section below the actions); `image` is /api/images/{id}'s answer.
//   registerCardAction({ label, key, run(result), searchOnly })  adds a button to every photo card (searchOnly:
//     only to the results of a search; key: its data-action, for a view that shows its state, e.g. pressed).
import { $, el } from "./util.js";

const views = new Map();
const viewerSections = [];
export const cardActions = [];

export function registerView(view) {
  views.set(view.id, view);
  let panel = $(`panel-${view.id}`);
  if (!panel) {
    panel = el("section", { id: `panel-${view.id}`, className: "panel", hidden: true });
    panel.setAttribute("role", "tabpanel");
    $("views").append(panel);
  }
  panel.setAttribute("aria-labelledby", `tab-${view.id}`);
  const tab = el("button", { type: "button", id: `tab-${view.id}`, textContent: view.label,
                             onclick: () => selectView(view.id, {}, { push: true }) });
  tab.setAttribute("role", "tab");
  tab.setAttribute("aria-controls", panel.id);
  tab.setAttribute("aria-selected", "false");
  $("tabs").append(tab);
  view.panel = panel;
  if (view.mount) view.mount(panel);
  return view;
}

export let currentView = null;

export function selectView(id, params = {}, { push = false } = {}) {
  const view = views.get(id) || views.values().next().value;
  for (const v of views.values()) {
    $(`tab-${v.id}`).setAttribute("aria-selected", String(v === view));
    v.panel.hidden = v !== view;
  }
  const changed = currentView !== view;
  currentView = view;
  if (push && changed) {  // a view may keep its own state in the URL (hash()), else it is #view=ID
    const h = view.hash ? view.hash() : `#view=${view.id}`;
    history.pushState(null, "", h || location.pathname + location.search);
  }
  if (view.show) view.show(params, { changed });
  return view;
}

export function registerViewerSection(render, { slot } = {}) { viewerSections.push({ render, slot }); }

export function renderViewerSections(image) {
  for (const { render, slot } of viewerSections) {
    let box = slot ? document.querySelector(`#viewer [data-slot="${slot}"]`) : null;
    if (!box) {
      box = el("div", { className: "viewer-slot", dataset: { slot: slot || "extra" } });
      $("viewer-actions").after(box);
    }
    try { render(image, box); } catch (err) { console.error(err); }
  }
}

export function registerCardAction(action) { cardActions.push(action); }
