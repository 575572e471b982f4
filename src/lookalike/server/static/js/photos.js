// The Photos view: the library newest first (browse) and every search, paged the same way ("Load more" and
// infinite scroll), with the filters and the query kept in the URL (#q=cat&after=2020-01-01), so that a URL
// reproduces a search. An uploaded image cannot live in a URL: the page says so and clears the words.
import { api } from "./api.js";
import { $, el, plural, setMessage, dateText } from "./util.js";
import { cardActions } from "./views.js";
import { openViewer } from "./viewer.js";

const PAGE = Number(new URLSearchParams(location.search).get("page")) || 30;  // ?page=N: page size
const QUERY_KEYS = ["q", "id", "url", "copies", "upload"];
const FILTERS = { folder: "folder", after: "after", before: "before", camera: "camera", min_size: "min-size",
                  threshold: "threshold", by: "by" };  // URL/API name -> input id
const SEARCH_ONLY = new Set(["threshold", "by"]);

const S = { query: null, results: [], next: null, total: null, loading: false, seq: 0, note: "", file: null };

// -- filters <-> inputs <-> URL ---------------------------------------------------------------------------------
function readFilters() {
  const f = {};
  for (const [key, id] of Object.entries(FILTERS)) {
    const v = $(id).value.trim();
    if (v !== "" && !(key === "by" && v === "embedding")) f[key] = v;
  }
  return f;
}

function writeFilters(params) {
  for (const [key, id] of Object.entries(FILTERS)) $(id).value = params.get(key) || (key === "by" ? "embedding" : "");
  if (showFilterCount()) $("filters").open = true;  // a link with filters shows them
  syncChips();
}

function showFilterCount() {  // the search-only ones (Min. score, By) count while there is a query
  const n = Object.keys(readFilters()).filter((k) => S.query || !SEARCH_ONLY.has(k)).length;
  $("filter-count").hidden = n === 0;
  $("filter-count").textContent = String(n);
  return n;
}

function hashFor(query, filters) {
  const p = new URLSearchParams();
  if (query) p.set(query.kind === "text" ? "q" : query.kind === "file" ? "upload" : query.kind,
                   String(query.kind === "file" ? query.name : query.value));
  for (const [k, v] of Object.entries(filters)) p.set(k, v);
  const s = p.toString();
  return s ? `#${s}` : "";
}

export function currentHash() { return hashFor(S.query, readFilters()); }

function setHash(push = true) {
  const h = hashFor(S.query, readFilters());
  if (location.hash === h || (!h && !location.hash)) return;
  const url = h || location.pathname + location.search;
  if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
}

// -- loading pages ------------------------------------------------------------------------------------------------
/** Functions (params, query) that add to every page request's parameters (js/feedback.js: the marks). */
export const requestHooks = [];

function apiParams(offset) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(readFilters())) if (S.query || !SEARCH_ONLY.has(k)) p.set(k, v);
  for (const hook of requestHooks) hook(p, S.query);
  p.set("limit", String(PAGE));
  p.set("offset", String(offset));
  return p;
}

function request(offset) {
  const p = apiParams(offset);
  const q = S.query;
  if (!q) return api(`browse?${p}`);
  if (q.kind === "file") {
    const form = new FormData();
    form.append("image", q.value, q.name);
    return api(`search/upload?${p}`, { method: "POST", body: form });
  }
  if (q.kind === "copies") return api(`images/${encodeURIComponent(q.value)}/copies?${p}`);
  p.set(q.kind === "text" ? "q" : q.kind, String(q.value));
  return api(`search?${p}`);
}

export async function load({ append = false } = {}) {
  if (append && (S.next === null || S.loading)) return;
  if (!append) stale = false;
  const seq = ++S.seq;
  const offset = append ? S.next : 0;
  S.loading = true;
  $("results").setAttribute("aria-busy", "true");
  $("load-more").disabled = true;
  if (!append) setMessage($("message"), S.query ? "Searching…" : "Loading your photos…", "busy");
  try {
    const res = await request(offset);
    if (seq !== S.seq) return;  // a newer request won
    if (!append) { S.results = []; $("results").replaceChildren(); }
    const start = S.results.length;
    S.results.push(...res.results);
    S.next = res.next_offset ?? null;
    S.total = res.total ?? null;
    S.by = res.by;
    $("results").append(...res.results.map((r, i) => card(r, start + i)));
    showExplain(res);
    summarize(res);
    if (!append) window.scrollTo({ top: 0 });
  } catch (err) {
    if (seq !== S.seq) return;
    if (!append) { S.results = []; $("results").replaceChildren(); }
    S.next = null;
    setMessage($("message"), err.message, "error");
  } finally {
    if (seq === S.seq) {
      S.loading = false;
      $("results").removeAttribute("aria-busy");
      $("load-more").hidden = S.next === null;
      $("load-more").disabled = false;
    }
  }
}

let stale = false;
/** The library changed elsewhere (copies moved to the trash, put back): the list is loaded again when shown. */
export function markStale() { stale = true; }

/** The view is shown (its tab clicked): its list is loaded the first time, and again when it went stale. */
export function shown() {
  if (S.seq === 0) return fromHash();
  if (stale) { stale = false; return load(); }
  return null;
}

/** The list the viewer walks through, and a way to extend it by a page. */
export const listing = {
  get results() { return S.results; },
  get hasMore() { return S.next !== null; },
  async more() { await load({ append: true }); return S.results; },
};

function summarize(res) {
  const n = S.results.length;
  const more = S.next !== null;
  if (!S.query) {
    const text = S.total ? `${plural(S.total, "photo")}, newest first${more ? ` (showing ${n})` : ""}`
      : "No photos here yet: index a folder, or clear the filters.";
    setMessage($("message"), (S.note ? `${S.note} ` : "") + text, S.total ? "ok" : "empty");
  } else if (!n) {
    const filters = Object.keys(readFilters()).length;
    const x = res.explain || {};
    const ignored = x.common_words_only ? ` (only common words, which are not searched on their own: ${x.common_words_only.join(" ")})`
      : x.unmatched && x.unmatched.length ? ` (not understood: ${x.unmatched.join(", ")})` : "";
    setMessage($("message"), filters ? `No results with ${plural(filters, "filter")} on: clear or loosen them, or try other words.`
      : res.kind === "text" ? `No photo matches these words${ignored}. Try another word, or search by an image.`
      : "No results (is the minimum score too strict?)", "empty");
  } else {
    setMessage($("message"), (S.note ? `${S.note} ` : "") + `${plural(n, "result")}${more ? ", more below" : ""}`, "ok");
    S.note = "";  // said once: a re-run of the search (marks) does not repeat it
  }
}

function showExplain(res) {
  const x = res.explain || {};
  const classes = x.classes ? x.classes.slice(0, 6).map((c) => c.name) : [];
  const parts = classes.length ? [`understood as: ${classes.join(", ")}`] : [];
  if (x.unmatched && x.unmatched.length) parts.push(`not understood: ${x.unmatched.join(", ")}`);
  if (x.excluded) {  // "-word" in the query
    parts.push(`left out: ${Object.keys(x.excluded.words).join(", ")} (${plural(x.excluded.from_results || 0, "photo")})`);
  }
  $("query-explain").textContent = parts.join(" · ");
}

// -- cards --------------------------------------------------------------------------------------------------------
function card(r, index) {
  const node = $("card-tpl").content.firstElementChild.cloneNode(true);
  node.dataset.id = r.id;
  const img = node.querySelector("img");
  img.src = r.thumb;
  img.alt = r.name;
  if (S.query) {
    node.querySelector(".rank").textContent = `#${index + 1}`;
    node.querySelector(".score").textContent = r.score.toFixed(3);
    const score = node.querySelector(".score");
    score.title = S.by === "keywords" ? "estimated probability that the photo shows the words" : "similarity (cosine)";
    if (r.copy) {  // image queries: an edited copy of the query, verified as dupes does
      score.after(el("span", { className: "copy-mark", textContent: "copy",
                               title: `an edited copy of the query (copy score ${r.copy_score}; a copy above 0.5)` }));
    }
  } else {
    node.querySelector(".rank").textContent = dateText(r.taken_at, r.mtime).slice(0, 10);
    node.querySelector(".rank").title = r.taken_at ? "date taken" : r.mtime ? "file date (the photo holds no date taken)" : "";
    node.querySelector(".score").remove();
  }
  const name = node.querySelector(".name");
  name.textContent = r.name;
  name.title = r.path;
  const tags = node.querySelector(".tags");
  for (const t of r.tags.slice(0, 3)) tags.append(el("li", { textContent: t.name, title: `${t.name}: ${t.score}` }));
  node.querySelector(".open").href = r.file;
  node.querySelector(".thumb").addEventListener("click", () => openViewer(listing, index));
  node.querySelector(".more").addEventListener("click", () => search({ kind: "id", value: r.id }));
  const actions = node.querySelector(".card-actions");
  for (const a of cardActions) {
    if (!a.searchOnly || S.query) {
      actions.append(el("button", { type: "button", className: "card-action", textContent: a.label,
                                    dataset: { action: a.key || a.label }, onclick: () => a.run(r) }));
    }
  }
  return node;
}

// -- queries ------------------------------------------------------------------------------------------------------
/** Run a search: {kind: "text"|"id"|"url"|"copies", value} or {kind: "file", value: File, name}; null browses. */
export function search(query, { push = true, note = "" } = {}) {
  S.query = query;
  S.note = note;  // shown before the summary (e.g. "Taught “rex” from 3 photos.")
  if (query && query.kind === "file") { $("q").value = ""; $("url").value = ""; }  // the words were not searched
  if (query && query.kind === "text") $("url").value = "";
  if (query && query.kind === "url") $("q").value = "";
  if (!query || ["id", "copies"].includes(query.kind)) { $("q").value = ""; $("url").value = ""; }
  showQuery();
  setHash(push);
  return load();
}

function showQuery() {
  const q = S.query;
  const img = $("query-img");
  showFilterCount();  // browsing: Min. score and By do not count
  $("query").hidden = !q;
  $("folders").hidden = !!q;
  $("query-explain").textContent = "";
  if (img.dataset.blob) { URL.revokeObjectURL(img.dataset.blob); delete img.dataset.blob; }
  img.hidden = true;
  if (!q) return;
  img.onerror = () => { img.hidden = true; };  // an upload that is not an image: no broken-image icon
  if (q.kind === "file") {
    img.src = img.dataset.blob = URL.createObjectURL(q.value);
    img.hidden = false;
    $("query-text").textContent = `Photos like ${q.name} — a search by an uploaded image (a link cannot hold it)`;
  } else if (q.kind === "id" || q.kind === "copies") {
    img.src = `api/images/${encodeURIComponent(q.value)}/thumb`;
    img.hidden = false;
    $("query-text").textContent = q.kind === "id" ? "More like this photo" : "Copies and edited copies of this photo";
  } else if (q.kind === "url") {
    $("query-text").textContent = `Photos like ${q.value}`;
  } else {
    $("query-text").textContent = `Photos matching “${q.value}”`;
  }
}

/** The page's state from the URL (first load, back/forward). */
export function fromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  writeFilters(p);
  const key = QUERY_KEYS.find((k) => p.has(k));
  let query = null;
  if (key === "q") { query = { kind: "text", value: p.get("q") }; $("q").value = query.value; }
  else if (key === "url") { query = { kind: "url", value: p.get("url") }; $("url").value = query.value; }
  else if (key === "id" || key === "copies") query = { kind: key, value: p.get(key) };
  S.query = query;
  S.note = key === "upload" ? `The search was by an uploaded image (${p.get("upload")}), which a link cannot hold: `
    + "drop or pick it again." : "";
  if (!query) { $("q").value = ""; $("url").value = ""; }
  showQuery();
  return load();
}

// -- folders ------------------------------------------------------------------------------------------------------
/** The folder chips pressed as the folder filter says (after a chip, a typed folder, Clear, Back). */
function syncChips() {
  const current = $("folder").value.trim();
  for (const b of $("folders").querySelectorAll(".chip")) b.setAttribute("aria-pressed", String(b.dataset.path === current));
}

export function showFolders(folders) {
  const list = $("folder-list");
  list.replaceChildren(...folders.map((x) => el("option", { value: x.path, label: `${x.path} (${x.count})` })));
  const nav = $("folders");
  const current = $("folder").value.trim();
  const chip = (label, path, count) => {
    const b = el("button", { type: "button", className: "chip", title: path || "every folder", dataset: { path },
                             onclick: () => { $("folder").value = path; showFilterCount(); search(null); syncChips(); } },
                 label, count !== undefined ? el("span", { className: "count", textContent: ` ${count}` }) : null);
    b.setAttribute("aria-pressed", String(current === path));
    return b;
  };
  nav.replaceChildren(chip("All photos", ""), ...folders.map((f) => chip(f.path.split("/").filter(Boolean).pop() || f.path, f.path, f.count)));
  nav.hidden = !!S.query || folders.length < 2;
}

// -- image input: drop, paste, pick -------------------------------------------------------------------------------
function firstImage(list) {
  for (const f of list || []) if (f.type.startsWith("image/") || /\.(jpe?g|png|gif|webp|bmp|tiff?|heic|heif|avif)$/i.test(f.name)) return f;
  return null;
}

function byFile(file, onSearch) {
  onSearch();
  search({ kind: "file", value: file, name: file.name || "pasted-image" });
}

export function setup({ onSearch = () => {} } = {}) {
  $("text-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("q").value.trim();
    if (q) search({ kind: "text", value: q });
  });
  $("url-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const u = $("url").value.trim();
    if (u) search({ kind: "url", value: u });
  });
  $("filter-form").addEventListener("submit", (e) => e.preventDefault());
  $("filter-form").addEventListener("change", () => { showFilterCount(); syncChips(); setHash(true); load(); });
  $("clear-filters").addEventListener("click", () => { writeFilters(new URLSearchParams()); setHash(true); load(); });
  $("back-to-library").addEventListener("click", () => search(null));
  $("load-more").addEventListener("click", () => load({ append: true }));
  // infinite scroll: when the reader scrolls near the end, the next page comes by itself
  const nearEnd = () => $("sentinel").getBoundingClientRect().top < window.innerHeight + 400;
  for (const type of ["scroll", "wheel", "touchmove"]) {
    window.addEventListener(type, () => { if (S.results.length && !$("panel-photos").hidden && nearEnd()) load({ append: true }); },
                            { passive: true });
  }

  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => {
      if (!e.dataTransfer || ![...e.dataTransfer.types].includes("Files")) return;
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  document.addEventListener("dragleave", (e) => { if (e.target === drop || !e.relatedTarget) drop.classList.remove("over"); });
  document.addEventListener("drop", (e) => {
    if (!e.dataTransfer) return;
    e.preventDefault();
    drop.classList.remove("over");
    const file = firstImage(e.dataTransfer.files);
    if (file) byFile(file, onSearch);
    else {
      const url = e.dataTransfer.getData("text/uri-list") || e.dataTransfer.getData("text/plain");
      if (/^https?:\/\//i.test(url || "")) { onSearch(); $("url").value = url.trim(); search({ kind: "url", value: url.trim() }); }
      else setMessage($("message"), "That is not an image file.", "error");
    }
  });
  document.addEventListener("paste", (e) => {
    const file = firstImage(e.clipboardData && e.clipboardData.files);
    if (file) { e.preventDefault(); byFile(file, onSearch); }
  });
  $("file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) byFile(file, onSearch);
    e.target.value = "";
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); }
  });
}
