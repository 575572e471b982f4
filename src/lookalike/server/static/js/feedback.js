// Relevance feedback and taught words on the web page. Mark search results Good or Bad: the search runs again
// at once with more_like / less_like (bad ones drop out, photos like the good ones come up); "Save as a word"
// turns the marks into a taught concept (POST /api/concepts), then searches for the word. The viewer's "teach"
// slot teaches a word from the photo being viewed. Marks belong to one query: a new query starts clean; a reload
// of the page keeps them (sessionStorage: this tab only, gone with it).
import { api } from "./api.js";
import { $, el, setMessage } from "./util.js";
import { registerCardAction, registerViewerSection } from "./views.js";

const marks = new Map();  // image id -> "good" | "bad" (in the order made: the last one can be undone)
let markedQuery = null;   // the query the marks were made on (its JSON)
let loaded = false;       // the marks saved before a reload were looked at (the page's first query)
let rerun = () => {};
const SAVED = "lookalike.marks";

function ids(kind) { return [...marks].filter(([, m]) => m === kind).map(([id]) => id); }

function save() {
  try { sessionStorage.setItem(SAVED, JSON.stringify({ query: markedQuery, marks: [...marks] })); } catch { /* private mode, full */ }
}

function restore(key) {  // the marks of the page before a reload, if they were made on this query
  try {
    const s = JSON.parse(sessionStorage.getItem(SAVED) || "null");
    if (s && s.query === key && Array.isArray(s.marks)) {
      for (const [id, m] of s.marks) if (Number.isInteger(id) && (m === "good" || m === "bad")) marks.set(id, m);
    }
  } catch { /* unreadable: start clean */ }
}

/** Adds the marks to a search request's parameters (photos.js calls this for every search page). */
export function addFeedback(params, query) {
  const key = JSON.stringify(query ? [query.kind, String(query.value)] : null);
  if (key !== markedQuery) {
    marks.clear();
    markedQuery = key;
    if (!loaded && query) { restore(key); loaded = true; } else if (loaded) save();
    showBar();
  }
  if (!query) return;
  for (const id of ids("good")) params.append("more_like", String(id));
  for (const id of ids("bad")) params.append("less_like", String(id));
}

function toggle(result, kind) {
  const was = marks.get(result.id);
  marks.delete(result.id);  // re-set, so that it is the last mark made
  if (was !== kind) marks.set(result.id, kind);
  save();
  showBar();
  rerun();
}

function paint(card) {
  const m = marks.get(Number(card.dataset.id));
  if (m) card.dataset.mark = m; else delete card.dataset.mark;
  for (const b of card.querySelectorAll("button[data-action='good'], button[data-action='bad']")) {
    b.setAttribute("aria-pressed", String(b.dataset.action === m));
  }
}

function showBar() {
  const bar = $("feedback-bar");
  if (!bar) return;
  const good = ids("good").length, bad = ids("bad").length;
  bar.hidden = good + bad === 0;
  $("feedback-count").textContent = `${good} good, ${bad} bad: the list is re-ranked by your marks`
    + (bad ? " (photos marked bad leave it)." : ".");
  $("feedback-save").disabled = good === 0;
  for (const card of document.querySelectorAll("#results .card")) paint(card);
}

async function teach(word, examples, counter, message) {
  const res = await api("concepts", { json: { word, examples, counter_examples: counter } });
  const c = res.concept, p = c.validation && c.validation.precision;
  setMessage(message, `Taught “${c.word}” from ${c.examples.length} photo${c.examples.length === 1 ? "" : "s"}`
    + (c.counter_examples.length ? ` and ${c.counter_examples.length} counter-example${c.counter_examples.length === 1 ? "" : "s"}` : "")
    + (p !== null && p !== undefined ? ` (estimated precision ${p.toFixed(2)})` : "") + ".", "ok");
  return c;
}

/** Wires the feedback bar and the card buttons; ``search(query)`` runs a search, ``reload()`` the current one. */
export function setupFeedback({ search, reload }) {
  rerun = reload;
  const bar = el("div", { id: "feedback-bar", className: "feedback-bar", hidden: true },
    el("span", { id: "feedback-count" }),
    el("form", { id: "feedback-form", className: "feedback-form" },
      el("input", { id: "feedback-word", type: "text", maxLength: 60, placeholder: "a word for the good ones",
                    title: "the word to teach from your marks" }),
      el("button", { type: "submit", id: "feedback-save", textContent: "Save as a word" })),
    el("button", { type: "button", id: "feedback-undo", className: "linklike-button", textContent: "Undo last mark",
                   onclick: () => { const last = [...marks.keys()].pop(); if (last !== undefined) { marks.delete(last); save(); showBar(); reload(); } } }),
    el("button", { type: "button", id: "feedback-clear", className: "linklike-button", textContent: "Clear marks",
                   onclick: () => { marks.clear(); save(); showBar(); reload(); } }));
  $("message").before(bar);
  $("feedback-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const word = $("feedback-word").value.trim();
    if (!word) { $("feedback-word").focus(); return; }
    try {
      const c = await teach(word, ids("good"), ids("bad"), $("message"));
      $("feedback-word").value = "";
      marks.clear();
      save();
      $("q").value = c.word;
      search({ kind: "text", value: c.word }, $("message").textContent);  // the note stays above the new list
    } catch (err) { setMessage($("message"), err.message, "error"); }
  });
  new MutationObserver((changes) => {
    for (const ch of changes) for (const n of ch.addedNodes) if (n.classList && n.classList.contains("card")) paint(n);
  }).observe($("results"), { childList: true });
  registerCardAction({ label: "Good", key: "good", searchOnly: true, run: (r) => toggle(r, "good") });
  registerCardAction({ label: "Bad", key: "bad", searchOnly: true, run: (r) => toggle(r, "bad") });
  registerViewerSection((image, slot) => {
    const word = el("input", { type: "text", maxLength: 60, placeholder: "e.g. rex", title: "the word to teach" });
    const note = el("span", { className: "message" });
    const form = el("form", { className: "teach-form" }, el("label", { textContent: "Teach a word from this photo " }),
                    word, el("button", { type: "submit", textContent: "Teach" }), note);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!word.value.trim()) return;
      try { await teach(word.value.trim(), [image.id], [], note); } catch (err) { setMessage(note, err.message, "error"); }
    });
    slot.replaceChildren(form);
  }, { slot: "teach" });
}
