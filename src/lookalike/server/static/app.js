// lookalike web page: plain JavaScript modules, no build step. Talks to the REST API under ./api/.
// Each tab is a view registered in js/views.js; a feature adds its own view or viewer section there.
import { apiPatient, restoreToken, saveToken, whenLocked } from "./js/api.js";
import { findDupes, refreshLog, setupDupes } from "./js/dupes.js";
import { addFeedback, setupFeedback } from "./js/feedback.js";
import { setupIndexing, showJob } from "./js/indexing.js";
import { peopleView } from "./js/people.js";
import * as photos from "./js/photos.js";
import { $ } from "./js/util.js";
import { setupViewer } from "./js/viewer.js";
import { currentView, registerView, selectView } from "./js/views.js";

registerView({
  id: "photos", label: "Photos",
  show(params) { if (params.fromHash) photos.fromHash(); else photos.shown(); },
  hash: () => photos.currentHash(),
});
registerView({ id: "dupes", label: "Duplicates", show(params) { refreshLog(); if (params.find) findDupes(); } });
registerView({ id: "index", label: "Index a folder" });
registerView(peopleView);

// The header's counts and the folder list, each asked for patiently (a busy or restarting server is asked
// again), so that the counts after an indexing job never stay stale; the folder list failing leaves them shown.
async function refreshInfo() {
  let s;
  try {
    s = await apiPatient("stats");
  } catch (err) {
    $("stats").textContent = err.status === 401 ? "locked" : "";
    return;
  }
  $("stats").textContent = `${s.images} photo${s.images === 1 ? "" : "s"} · ${s.folders} folder${s.folders === 1 ? "" : "s"}`;
  $("index-roots").textContent = `The server may index folders inside: ${s.index_roots.join(", ")}`;
  if (!$("index-folder").value && s.index_roots.length) $("index-folder").placeholder = s.index_roots[0];
  if (s.job) showJob(s.job);
  try {
    photos.showFolders((await apiPatient("folders")).folders);
  } catch (err) { /* the counts stay; the folder chips wait for the next refresh */ }
}

function route() {
  const p = new URLSearchParams(location.hash.slice(1));
  const view = p.get("view") || "photos";
  selectView(view, { fromHash: view === "photos", find: p.has("find") });
}

function init() {
  whenLocked(() => { $("token-form").hidden = false; $("token").focus(); });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    saveToken($("token").value);
    $("token-form").hidden = true;
    refreshInfo();
    if (currentView && currentView.id === "photos") photos.fromHash();
  });
  restoreToken();
  const toPhotos = () => { if (!currentView || currentView.id !== "photos") selectView("photos"); };
  photos.setup({ onSearch: toPhotos });
  photos.requestHooks.push(addFeedback);
  setupFeedback({ search: (q, note) => { toPhotos(); photos.search(q, { note }); }, reload: () => photos.load() });
  setupViewer({ onSearch: (query) => { toPhotos(); photos.search(query); } });
  setupDupes({ changed: () => { refreshInfo(); photos.markStale(); } });
  setupIndexing({ onDone: () => { refreshInfo(); if (currentView.id === "photos") photos.load(); } });
  window.addEventListener("popstate", route);
  refreshInfo();
  route();
  document.body.dataset.ready = "1";
}

init();
