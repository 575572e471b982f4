// The Duplicates view: groups of exact copies and near duplicates, the best copy first and marked with why it
// is the best (most pixels, camera EXIF, oldest file), sizes and dimensions; per group and for all groups
// "keep the best, move the others to the trash" after a confirmation; every move can be undone from the log.
import { api, apiPatient } from "./api.js";
import { $, el, bytes, confirmDialog, plural, setMessage } from "./util.js";
import { openViewer } from "./viewer.js";

const D = { groups: [], where: "the trash" };  // where copies go: the desktop trash or the server's quarantine folder

// GET /api/dupes answers with the groups, or (202) with the background job that computes them: then poll
// GET /api/dupes/jobs/ID, showing its stage and progress, until its result is there.
async function fetchDupes(params) {
  params.set("wait", "0");  // a cached result at once, else the job to follow (with its progress on the page)
  let res = await api(`dupes?${params}`);
  while (res && !res.groups && res.id && ["queued", "running"].includes(res.state)) {
    const pct = res.total ? ` ${Math.round(100 * res.fraction)}%` : "";
    setMessage($("dupes-message"), `Looking for duplicates… ${res.stage || ""}${pct}`, "busy");
    await new Promise((r) => setTimeout(r, 500));
    res = await apiPatient(`dupes/jobs/${encodeURIComponent(res.id)}`);
    D.polled = (D.polled || 0) + 1;
    document.body.dataset.dupesPolls = String(D.polled);  // (the tests check that the job path ran)
  }
  if (res && !res.groups && res.result) return res.result;
  if (res && !res.groups) throw new Error(res.error || "finding duplicates failed");
  return res;
}

export async function findDupes() {
  const p = new URLSearchParams();
  const folder = $("dupes-folder").value.trim();
  const threshold = $("dupes-threshold").value.trim();
  if (folder) p.set("folder", folder);
  if (threshold) p.set("threshold", threshold);
  setMessage($("dupes-message"), "Looking for duplicates…", "busy");
  $("dupes").replaceChildren();
  $("dupes-bulk").hidden = true;
  try {
    const res = await fetchDupes(p);
    D.groups = res.groups || [];
    render();
    setMessage($("dupes-message"), D.groups.length ? `${plural(D.groups.length, "group")} of duplicates`
      : "No duplicates found.", "ok");
  } catch (err) {
    setMessage($("dupes-message"), err.message, "error");
  }
  refreshLog();
}

function extra(groups) { return groups.reduce((n, g) => n + g.items.length - 1, 0); }

function render() {
  const live = D.groups.filter((g) => !g.done);
  $("dupes-bulk").hidden = live.length < 1;
  $("dupes-keep-all").textContent = `Keep the best of ${plural(live.length, "group")}: move ${plural(extra(live), "copy", "copies")} to ${D.where}`;
  $("dupes").replaceChildren(...D.groups.map(group));
}

function group(g, gi) {
  const box = el("section", { className: `dupe-group${g.done ? " done" : ""}`, dataset: { group: gi } });
  const badge = el("span", { className: `badge ${g.kind === "exact" ? "exact" : "near"}`,
                             textContent: g.kind === "exact" ? "exact copies" : "near duplicates" });
  const why = el("span", { className: "why", textContent: g.why_best ? `best: ${g.why_best}` : "" });
  box.append(el("h3", {}, badge, ` ${g.items.length} photos `, why));
  const list = { results: g.items.map((it) => ({ ...it, tags: [] })), hasMore: false, more: async () => [] };
  const row = el("div", { className: "dupe-row" });
  g.items.forEach((item, i) => {
    const img = el("img", { loading: "lazy", src: item.thumb, alt: item.name || "" });
    const open = el("button", { type: "button", className: "thumb", title: "View", onclick: () => openViewer(list, i) }, img);
    const cap = el("figcaption", {}, el("span", { className: "name", textContent: item.name || item.path, title: item.path }));
    cap.append(el("span", { className: "dims", textContent: `${item.width}×${item.height} · ${bytes(item.size)}` }));
    if (item.best) cap.append(el("span", { className: "best-mark", textContent: "best", title: g.why_best || "" }));
    else cap.append(el("span", { className: "score", textContent: item.exact ? "same bytes" : item.score.toFixed(3) }));
    row.append(el("figure", { className: `dupe${item.best ? " best" : ""}` }, open, cap));
  });
  box.append(row);
  const n = g.items.length - 1;
  if (g.done) box.append(el("p", { className: "done-text", textContent: g.done }));
  else box.append(el("div", { className: "group-actions" },
                     el("button", { type: "button", className: "keep-best", onclick: () => keepBest([g]),
                                    textContent: `Keep the best, move ${plural(n, "other", "others")} to ${D.where}` })));
  return box;
}

async function keepBest(groups) {
  const live = groups.filter((g) => !g.done);
  const n = extra(live);
  if (!n) return;
  const ok = await confirmDialog(`Move ${plural(n, "file")} to ${D.where}? The best copy of ${live.length === 1 ? "the group" : `each of the ${live.length} groups`} stays. You can undo this.`,
                                 `Move to ${D.where}`);
  if (!ok) return;
  try {
    const action = await api("dupes/remove", {
      json: { groups: live.map((g) => ({ keep: g.items.find((i) => i.best).id, remove: g.items.filter((i) => !i.best).map((i) => i.id) })) },
    });
    const failed = action.items.filter((m) => !m.to);
    for (const g of live) g.done = `Moved ${plural(g.items.length - 1, "copy", "copies")} to ${D.where}.`;
    render();
    setMessage($("dupes-message"), `Moved ${plural(action.moved, "file")} to ${D.where}`
      + (failed.length ? `; ${failed.length} left alone (${failed[0].error})` : "") + ".", failed.length ? "error" : "ok");
    refreshLog();
    if (action.moved) onChanged();
  } catch (err) {
    setMessage($("dupes-message"), err.message, "error");
  }
}

export async function refreshLog() {
  try {
    const res = await api("dupes/actions");
    const where = res.moves_to === "trash" || !res.moves_to ? "the trash" : `the quarantine folder ${res.moves_to}`;
    if (where !== D.where) { D.where = where; if (D.groups.length) render(); }
    const recent = res.actions.slice(0, 10);
    $("dupes-log").hidden = !recent.length;
    $("dupes-actions").replaceChildren(...recent.map((a) => el("li", { dataset: { action: a.id } },
      el("span", { textContent: `${a.at.replace("T", " ")}: ${plural(a.moved, "file")} to ${a.how === "trash" ? "the trash" : "the quarantine folder"}` }),
      a.undone ? el("span", { className: "undone", textContent: " (undone)" })
        : el("button", { type: "button", className: "undo", textContent: "Undo", onclick: () => undo(a.id) }))));
  } catch (err) {
    $("dupes-log").hidden = true;
  }
}

async function undo(id) {
  try {
    const res = await api("dupes/undo", { json: { action: id } });
    const back = res.files.filter((f) => f.done === "restored").length;
    const left = res.files.filter((f) => f.done !== "restored");
    if (back) onChanged();
    setMessage($("dupes-message"), `Put back ${plural(back, "file")}` + (left.length ? `; ${left.length} left alone (${left[0].done})` : "") + ".",
               left.length ? "error" : "ok");
    await findDupes();
    setMessage($("dupes-message"), `Put back ${plural(back, "file")}` + (left.length ? `; ${left.length} left alone` : "") + ".",
               left.length ? "error" : "ok");
  } catch (err) {
    setMessage($("dupes-message"), err.message, "error");
  }
}

let onChanged = () => {};  // the page's: files were moved or put back (the counts and the photo list are stale)

export function setupDupes({ changed = () => {} } = {}) {
  onChanged = changed;
  $("dupes-form").addEventListener("submit", (e) => { e.preventDefault(); findDupes(); });
  $("dupes-keep-all").addEventListener("click", () => keepBest(D.groups));
}
