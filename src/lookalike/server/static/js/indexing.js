// The "Index a folder" view: start an indexing job on the server and follow its progress.
import { api, apiPatient } from "./api.js";
import { $ } from "./util.js";

// following: the id of the job this page started or saw running; onDone runs once when it finishes, however its
// end is seen (a poll, the start request itself when the job was that quick, or the stats of refreshInfo).
const J = { polling: null, following: null, onDone: () => {} };
const ACTIVE = ["queued", "scanning", "running"];
const POLL_MS = 400;

export function setupIndexing({ onDone }) {
  J.onDone = onDone;
  $("index-form").addEventListener("submit", (e) => { e.preventDefault(); startIndex(); });
}

async function startIndex() {
  const folder = $("index-folder").value.trim();
  try {
    const job = await api("index", { json: { folder } });
    J.following = job.id;
    showJob(job);
  } catch (err) {
    $("job").hidden = false;
    $("job-folder").textContent = folder;
    $("job-state").textContent = "refused";
    $("job-state").dataset.state = "failed";
    $("job-text").textContent = err.message;
  }
}

export function showJob(job) {
  $("job").hidden = false;
  $("job-folder").textContent = job.folder;
  $("job-state").textContent = job.state;
  $("job-state").dataset.state = job.state;
  const bar = $("job-progress");
  const active = ACTIVE.includes(job.state);
  if (active) J.following = job.id;
  if (job.state === "scanning" || job.state === "queued") bar.removeAttribute("value");  // indeterminate
  else bar.value = job.fraction;
  $("topbar").hidden = !active;
  $("topbar-fill").style.width = `${Math.round((job.fraction || 0) * 100)}%`;
  if (job.state === "running") $("job-text").textContent = `${job.done} of ${job.total} photos read`;
  else if (job.state === "scanning" || job.state === "queued") $("job-text").textContent = "looking for photos…";
  else if (job.state === "done") {
    const s = job.summary || {};
    $("job-text").textContent = `done: ${s.indexed} indexed, ${s.unchanged} unchanged, ${s.skipped_count || 0} skipped, `
      + `${s.removed} removed in ${job.elapsed_s} s`;
  } else $("job-text").textContent = job.error || "failed";
  if (active && !J.polling) J.polling = setTimeout(() => pollJob(job.id), POLL_MS);
  if (!active && J.following === job.id) {
    J.following = null;
    J.onDone();
  }
}

async function pollJob(id) {
  J.polling = null;
  try {
    showJob(await apiPatient(`index/${encodeURIComponent(id)}`));  // a failed poll is tried again
  } catch (err) {
    $("job-text").textContent = err.message;
  }
}
