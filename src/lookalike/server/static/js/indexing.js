// The "Index a folder" view: start an indexing job on the server and follow its progress.
import { api } from "./api.js";
import { $ } from "./util.js";

const J = { polling: null, onDone: () => {} };

export function setupIndexing({ onDone }) {
  J.onDone = onDone;
  $("index-form").addEventListener("submit", (e) => { e.preventDefault(); startIndex(); });
}

async function startIndex() {
  const folder = $("index-folder").value.trim();
  try {
    showJob(await api("index", { json: { folder } }));
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
  const active = ["queued", "scanning", "running"].includes(job.state);
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
  if (active && !J.polling) J.polling = setTimeout(() => pollJob(job.id), 400);
}

async function pollJob(id) {
  J.polling = null;
  try {
    const job = await api(`index/${encodeURIComponent(id)}`);
    showJob(job);
    if (!["queued", "scanning", "running"].includes(job.state)) J.onDone();
  } catch (err) {
    $("job-text").textContent = err.message;
  }
}
