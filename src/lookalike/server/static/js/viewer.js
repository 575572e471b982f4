// The photo viewer: the photo large, its metadata (date, camera, size, path), tags, the text found in it (OCR),
// its caption and description, its faces (boxes over the photo); left/right keys walk through the list it was
// opened from (loading the next page at the end); "More like this" and "Find copies" search from it. Other
// features add sections through registerViewerSection (views.js): the "teach" and "people" slots.
import { api } from "./api.js";
import { $, el, bytes, dateText } from "./util.js";
import { renderViewerSections } from "./views.js";

const V = { list: null, index: 0, seq: 0, onSearch: null };

export function setupViewer({ onSearch }) {
  V.onSearch = onSearch;
  const dlg = $("viewer");
  $("viewer-close").addEventListener("click", () => dlg.close());
  $("viewer-prev").addEventListener("click", () => step(-1));
  $("viewer-next").addEventListener("click", () => step(1));
  document.addEventListener("keydown", (e) => {
    if (!dlg.open || e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement) return;
    if (e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
    if (e.key === "ArrowRight") { e.preventDefault(); step(1); }
  });
  dlg.addEventListener("click", (e) => { if (e.target === dlg) dlg.close(); });  // the backdrop
  dlg.addEventListener("close", () => {  // back on the card of the photo last viewed (the arrows may have moved on)
    const thumb = document.querySelector(`#results .card[data-id="${CSS.escape(dlg.dataset.id || "")}"] .thumb`);
    if (thumb) { thumb.focus(); thumb.scrollIntoView({ block: "nearest" }); }
  });
  $("viewer-similar").addEventListener("click", () => searchFrom("id"));
  $("viewer-copies").addEventListener("click", () => searchFrom("copies"));
}

/** Open the viewer on list.results[index]; list: {results, hasMore, more()} (a photo list of the page). */
export function openViewer(list, index) {
  V.list = list;
  V.index = index;
  const dlg = $("viewer");
  if (!dlg.open) dlg.showModal();
  show();
}

async function step(delta) {
  let results = V.list.results;
  let i = V.index + delta;
  if (i >= results.length && V.list.hasMore) results = await V.list.more();
  if (i < 0 || i >= results.length) return;
  V.index = i;
  show();
}

function searchFrom(kind) {
  const r = V.list.results[V.index];
  $("viewer").close();
  V.onSearch({ kind, value: r.id });
}

async function show() {
  const seq = ++V.seq;
  const r = V.list.results[V.index];
  const dlg = $("viewer");
  dlg.dataset.id = r.id;
  $("viewer-prev").disabled = V.index === 0;
  $("viewer-next").disabled = V.index >= V.list.results.length - 1 && !V.list.hasMore;
  const img = $("viewer-img");
  img.src = `${r.thumb}?size=512`;  // at once, then the original when it has loaded
  img.alt = r.name;
  $("viewer-faces").replaceChildren();
  $("viewer-name").textContent = r.name;
  $("viewer-open").href = r.file;
  let info;
  try {
    info = await api(`images/${encodeURIComponent(r.id)}`);
  } catch (err) {
    if (seq === V.seq) $("viewer-meta").replaceChildren(el("dd", { textContent: err.message }));
    return;
  }
  if (seq !== V.seq) return;
  const full = new Image();
  full.onload = () => { if (seq === V.seq) img.src = full.src; };
  full.src = r.file;
  meta(info);
  faces(info);
  renderViewerSections(info);
  dlg.dataset.ready = String(r.id);
}

function meta(info) {
  const rows = [
    ["Taken", dateText(info.taken_at, info.mtime)],
    ["Camera", info.camera || "—"],
    ["Size", `${info.width} × ${info.height} px · ${bytes(info.size)}`],
    ["Folder", info.folder],
    ["Path", info.path],
  ];
  $("viewer-meta").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { textContent: k }),
                                                               el("dd", { textContent: v, title: v })]));
  $("viewer-tags").replaceChildren(...info.tags.map((t) => el("li", { textContent: t.name, title: `${t.name}: ${t.score}` })));
  const texts = info.texts || {};
  const blocks = [["Description", texts.description], ["Text in the photo", texts.ocr], ["Caption", texts.caption]]
    .filter(([, v]) => v)
    .map(([k, v]) => el("div", { className: `text text-${k.split(" ")[0].toLowerCase()}` },
                        el("h3", { textContent: k }), el("p", { textContent: v })));
  $("viewer-texts").replaceChildren(...blocks);
}

function faces(info) {
  const boxes = (info.faces || []).map(({ box: [x, y, w, h] }) => {
    const b = el("div", { className: "face", title: "a face" });
    Object.assign(b.style, { left: `${(100 * x) / info.width}%`, top: `${(100 * y) / info.height}%`,
                             width: `${(100 * w) / info.width}%`, height: `${(100 * h) / info.height}%` });
    return b;
  });
  $("viewer-faces").replaceChildren(...boxes);
  if (boxes.length) {
    const dd = el("dd", { textContent: `${boxes.length}` });
    $("viewer-meta").append(el("dt", { textContent: "Faces" }), dd);
  }
}
