// lookalike web page: plain JavaScript, no build step. Talks to the REST API under ./api/.
// Everything the server sends is inserted as text (textContent), never as HTML.

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "lookalike_token";
const state = { lastSearch: null, polling: null };

// -- API -------------------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let resp;
  try {
    resp = await fetch(`api/${path}`, { ...options, headers });
  } catch (err) {
    throw new ApiError(0, "the server cannot be reached");
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    if (resp.status === 401) askForToken();
    throw new ApiError(resp.status, body.error || `HTTP ${resp.status}`);
  }
  return body;
}

function askForToken() {
  $("token-form").hidden = false;
  $("token").focus();
}

function saveToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
  // <img> requests cannot send headers: the same token as a same-site cookie lets thumbnails load
  document.cookie = `${TOKEN_KEY}=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
}

// -- search ----------------------------------------------------------------------------------------------------
function options() {
  const p = new URLSearchParams();
  p.set("limit", $("limit").value);
  const folder = $("folder").value.trim();
  if (folder) p.set("folder", folder);
  const threshold = $("threshold").value.trim();
  if (threshold !== "") p.set("threshold", threshold);
  return p;
}

async function runSearch(kind, value, { pushHash = true } = {}) {
  state.lastSearch = { kind, value };
  const p = options();
  let request;
  if (kind === "file") {
    const form = new FormData();
    form.append("image", value, value.name || "pasted-image");
    request = api(`search/upload?${p}`, { method: "POST", body: form });
  } else {
    p.set(kind === "text" ? "q" : kind, String(value));
    request = api(`search?${p}`);
    if (pushHash) setHash(kind === "text" ? "q" : kind, String(value));
  }
  showQuery(kind, value);
  setMessage("Searching…", "busy");
  $("results").setAttribute("aria-busy", "true");
  try {
    const res = await request;
    renderResults(res);
  } catch (err) {
    $("results").replaceChildren();
    setMessage(err.message, "error");
  } finally {
    $("results").removeAttribute("aria-busy");
  }
}

function showQuery(kind, value) {
  const img = $("query-img");
  $("query").hidden = false;
  $("query-explain").textContent = "";
  if (img.dataset.blob) { URL.revokeObjectURL(img.dataset.blob); delete img.dataset.blob; }
  if (kind === "file") {
    img.src = img.dataset.blob = URL.createObjectURL(value);
    img.hidden = false;
    $("query-text").textContent = `Photos like ${value.name || "the pasted image"}`;
  } else if (kind === "id") {
    img.src = `api/images/${encodeURIComponent(value)}/thumb`;
    img.hidden = false;
    $("query-text").textContent = "More like this photo";
  } else if (kind === "url") {
    img.hidden = true;
    $("query-text").textContent = `Photos like ${value}`;
  } else {
    img.hidden = true;
    $("query-text").textContent = `Photos matching “${value}”`;
  }
}

function renderResults(res) {
  const grid = $("results");
  const tpl = $("card-tpl");
  const cards = res.results.map((r, i) => {
    const card = tpl.content.firstElementChild.cloneNode(true);
    card.dataset.id = r.id;
    const img = card.querySelector("img");
    img.src = r.thumb;
    img.alt = r.name;
    card.querySelector(".rank").textContent = `#${i + 1}`;
    card.querySelector(".score").textContent = r.score.toFixed(3);
    card.querySelector(".score").title = res.by === "keywords" ? "keyword score" : "similarity (cosine)";
    const name = card.querySelector(".name");
    name.textContent = r.name;
    name.title = r.path;
    const tags = card.querySelector(".tags");
    for (const t of r.tags.slice(0, 3)) {
      const li = document.createElement("li");
      li.textContent = t.name;
      li.title = `${t.name}: ${t.score}`;
      tags.append(li);
    }
    card.querySelector(".open").href = r.file;
    const more = () => runSearch("id", r.id);
    card.querySelector(".thumb").addEventListener("click", more);
    card.querySelector(".more").addEventListener("click", more);
    return card;
  });
  grid.replaceChildren(...cards);
  const classes = res.explain && res.explain.classes ? res.explain.classes.slice(0, 6).map((c) => c.name) : [];
  $("query-explain").textContent = classes.length ? `understood as: ${classes.join(", ")}` : "";
  if (!res.results.length) {
    setMessage(res.kind === "text" ? "No photo matches these words. Try another word, or search by an image."
      : "No results (is the folder filter or the minimum score too strict?)", "empty");
  } else {
    setMessage(`${res.results.length} result${res.results.length === 1 ? "" : "s"}`, "ok");
  }
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function setMessage(text, kind = "") {
  const m = $("message");
  m.textContent = text;
  m.dataset.kind = kind;
}

// -- image input: drop, paste, pick -------------------------------------------------------------------------------
function firstImage(list) {
  for (const f of list || []) if (f.type.startsWith("image/") || /\.(jpe?g|png|gif|webp|bmp|tiff?|heic|heif|avif)$/i.test(f.name)) return f;
  return null;
}

function setupImageInputs() {
  const drop = $("drop");
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => {
      if (!e.dataTransfer || ![...e.dataTransfer.types].includes("Files")) return;
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  document.addEventListener("dragleave", (e) => {
    if (e.target === drop || !e.relatedTarget) drop.classList.remove("over");
  });
  document.addEventListener("drop", (e) => {
    if (!e.dataTransfer) return;
    e.preventDefault();
    drop.classList.remove("over");
    const file = firstImage(e.dataTransfer.files);
    if (file) { selectTab("search"); runSearch("file", file); }
    else {
      const url = e.dataTransfer.getData("text/uri-list") || e.dataTransfer.getData("text/plain");
      if (/^https?:\/\//i.test(url || "")) { $("url").value = url.trim(); runSearch("url", url.trim()); }
      else setMessage("That is not an image file.", "error");
    }
  });
  document.addEventListener("paste", (e) => {
    const file = firstImage(e.clipboardData && e.clipboardData.files);
    if (file) { e.preventDefault(); selectTab("search"); runSearch("file", file); }
  });
  $("file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) runSearch("file", file);
    e.target.value = "";
  });
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); }
  });
}

// -- URL hash: #q=cat, #id=12, #url=... (back button, shareable links) --------------------------------------------
function setHash(key, value) {
  const h = `#${key}=${encodeURIComponent(value)}`;
  if (location.hash !== h) history.pushState(null, "", h);
}

function fromHash() {
  const m = /^#(q|id|url)=(.*)$/.exec(location.hash);
  if (!m) return;
  const value = decodeURIComponent(m[2]);
  if (m[1] === "q") { $("q").value = value; runSearch("text", value, { pushHash: false }); }
  else if (m[1] === "id") runSearch("id", value, { pushHash: false });
  else { $("url").value = value; runSearch("url", value, { pushHash: false }); }
}

// -- tabs ------------------------------------------------------------------------------------------------------------
function selectTab(name) {
  for (const t of ["search", "dupes", "index"]) {
    $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
    $(`panel-${t}`).hidden = t !== name;
  }
}

// -- library info ----------------------------------------------------------------------------------------------------
async function refreshInfo() {
  try {
    const s = await api("stats");
    $("stats").textContent = `${s.images} photo${s.images === 1 ? "" : "s"} · ${s.folders} folder${s.folders === 1 ? "" : "s"}`;
    $("index-roots").textContent = `The server may index folders inside: ${s.index_roots.join(", ")}`;
    if (!$("index-folder").value && s.index_roots.length) $("index-folder").placeholder = s.index_roots[0];
    if (s.job) showJob(s.job);
    const f = await api("folders");
    const list = $("folder-list");
    list.replaceChildren(...f.folders.map((x) => {
      const o = document.createElement("option");
      o.value = x.path;
      o.label = `${x.path} (${x.count})`;
      return o;
    }));
  } catch (err) {
    $("stats").textContent = err.status === 401 ? "locked" : "";
  }
}

// -- duplicates ------------------------------------------------------------------------------------------------------
async function findDupes() {
  const p = new URLSearchParams();
  const folder = $("dupes-folder").value.trim();
  const threshold = $("dupes-threshold").value.trim();
  if (folder) p.set("folder", folder);
  if (threshold) p.set("threshold", threshold);
  const msg = $("dupes-message");
  msg.textContent = "Looking for duplicates…";
  msg.dataset.kind = "busy";
  $("dupes").replaceChildren();
  try {
    let res = await api(`dupes?${p}`);
    while (res.state) {  // 202: a job is finding them; poll it until it is done
      if (res.state === "done") { res = res.result; break; }
      if (res.state === "failed" || res.state === "cancelled") throw new Error(res.error || res.state);
      msg.textContent = `Looking for duplicates… ${res.stage} ${Math.round((res.fraction || 0) * 100)}%`;
      await new Promise((ok) => setTimeout(ok, 500));
      res = await api(`dupes/jobs/${res.id}`);
    }
    renderDupes(res.groups || []);
    msg.textContent = res.groups.length ? `${res.groups.length} group${res.groups.length === 1 ? "" : "s"} of duplicates`
      : "No duplicates found.";
    msg.dataset.kind = "ok";
  } catch (err) {
    msg.textContent = err.message;
    msg.dataset.kind = "error";
  }
}

function renderDupes(groups) {
  $("dupes").replaceChildren(...groups.map((g) => {
    const box = document.createElement("section");
    box.className = "dupe-group";
    const head = document.createElement("h3");
    const badge = document.createElement("span");
    badge.className = `badge ${g.kind === "exact" ? "exact" : "near"}`;
    badge.textContent = g.kind === "exact" ? "exact copies" : "near duplicates";
    head.append(badge, ` ${g.items.length} photos`);
    const row = document.createElement("div");
    row.className = "dupe-row";
    for (const item of g.items) {
      const fig = document.createElement("figure");
      fig.className = "dupe";
      const a = document.createElement("a");
      a.href = item.file || "#";
      a.target = "_blank";
      a.rel = "noopener";
      const img = document.createElement("img");
      img.loading = "lazy";
      img.src = item.thumb;
      img.alt = item.name || "";
      a.append(img);
      const cap = document.createElement("figcaption");
      cap.textContent = item.name || item.path;
      cap.title = item.path;
      if (typeof item.score === "number") {
        const s = document.createElement("span");
        s.className = "score";
        s.textContent = item.score.toFixed(3);
        cap.append(" ", s);
      }
      fig.append(a, cap);
      row.append(fig);
    }
    box.append(head, row);
    return box;
  }));
}

// -- indexing jobs ---------------------------------------------------------------------------------------------------
async function startIndex() {
  const folder = $("index-folder").value.trim();
  try {
    const job = await api("index", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ folder }),
    });
    showJob(job);
  } catch (err) {
    $("job").hidden = false;
    $("job-folder").textContent = folder;
    $("job-state").textContent = "refused";
    $("job-state").dataset.state = "failed";
    $("job-text").textContent = err.message;
  }
}

function showJob(job) {
  $("job").hidden = false;
  $("job-folder").textContent = job.folder;
  $("job-state").textContent = job.state;
  $("job-state").dataset.state = job.state;
  const bar = $("job-progress");
  const active = ["queued", "scanning", "running"].includes(job.state);
  if (job.state === "scanning" || job.state === "queued") bar.removeAttribute("value"); // indeterminate
  else bar.value = job.fraction;
  const top = $("topbar");
  top.hidden = !active;
  $("topbar-fill").style.width = `${Math.round((job.fraction || 0) * 100)}%`;
  if (job.state === "running") $("job-text").textContent = `${job.done} of ${job.total} photos read`;
  else if (job.state === "scanning" || job.state === "queued") $("job-text").textContent = "looking for photos…";
  else if (job.state === "done") {
    const s = job.summary || {};
    $("job-text").textContent = `done: ${s.indexed} indexed, ${s.unchanged} unchanged, ${s.skipped_count || 0} skipped, `
      + `${s.removed} removed in ${job.elapsed_s} s`;
  } else $("job-text").textContent = job.error || "failed";
  if (active && !state.polling) state.polling = setTimeout(() => pollJob(job.id), 400);
}

async function pollJob(id) {
  state.polling = null;
  try {
    const job = await api(`index/${encodeURIComponent(id)}`);
    showJob(job);
    if (!["queued", "scanning", "running"].includes(job.state)) refreshInfo();
  } catch (err) {
    $("job-text").textContent = err.message;
  }
}

// -- wiring ------------------------------------------------------------------------------------------------------------
function init() {
  $("text-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const q = $("q").value.trim();
    if (q) runSearch("text", q);
  });
  $("url-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const u = $("url").value.trim();
    if (u) runSearch("url", u);
  });
  for (const id of ["folder", "limit", "threshold"]) {
    $(id).addEventListener("change", () => {
      if (state.lastSearch) runSearch(state.lastSearch.kind, state.lastSearch.value, { pushHash: false });
    });
  }
  for (const t of ["search", "dupes", "index"]) $(`tab-${t}`).addEventListener("click", () => selectTab(t));
  $("dupes-form").addEventListener("submit", (e) => { e.preventDefault(); findDupes(); });
  $("index-form").addEventListener("submit", (e) => { e.preventDefault(); startIndex(); });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    saveToken($("token").value);
    $("token-form").hidden = true;
    refreshInfo();
    if (state.lastSearch) runSearch(state.lastSearch.kind, state.lastSearch.value, { pushHash: false });
  });
  const saved = localStorage.getItem(TOKEN_KEY);
  if (saved) saveToken(saved);
  setupImageInputs();
  window.addEventListener("popstate", fromHash);
  refreshInfo();
  fromHash();
  document.body.dataset.ready = "1";
}

init();
