// The People view: people found in the faces (GET /api/people), naming one (a name another person has merges
// the two), a person's faces with "move to…" (naming one face splits it off), and a person's photos (a search
// by the name). Loaded as its own module; uses app.js's API helper and search. Server text goes in as text only.
import { api, runSearch, selectTab } from "./app.js";

const $ = (id) => document.getElementById(id);

function message(text, kind = "") {
  const m = $("people-message");
  m.textContent = text;
  m.dataset.kind = kind;
}

async function loadPeople() {
  message("Loading people…");
  try {
    const res = await api("people");
    renderPeople(res.people);
    message(res.people.length ? `${res.people.length} people` : "No faces yet: index with --faces (lookalike index --faces DIR).",
      res.people.length ? "ok" : "empty");
  } catch (err) {
    message(err.message, "error");
  }
}

function faceImg(url, alt) {
  const img = document.createElement("img");
  img.loading = "lazy";
  img.src = url;
  img.alt = alt;
  return img;
}

function nameForm(label, onName) {
  const form = document.createElement("form");
  form.className = "person-name";
  const input = document.createElement("input");
  input.placeholder = label;
  input.required = true;
  input.maxLength = 80;
  input.setAttribute("aria-label", label);
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = "Name";
  form.append(input, button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (!name) return;
    try {
      await onName(name);
    } catch (err) {
      message(err.message, "error");
    }
  });
  return form;
}

async function postName(path, name) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
}

function renderPeople(people) {
  const grid = $("people");
  grid.replaceChildren(...people.map((p) => {
    const card = document.createElement("figure");
    card.className = "card person";
    card.dataset.id = p.id;
    const thumb = document.createElement("button");
    thumb.type = "button";
    thumb.className = "thumb";
    thumb.title = "Show this person's faces";
    if (p.sample) thumb.append(faceImg(p.sample.url, p.name || `person ${p.id}`));
    thumb.addEventListener("click", () => showFaces(p.id));
    const cap = document.createElement("figcaption");
    const title = document.createElement("div");
    title.className = "person-title";
    title.textContent = p.name || `Unnamed #${p.id}`;
    const count = document.createElement("div");
    count.className = "card-row";
    count.textContent = `${p.faces} face${p.faces === 1 ? "" : "s"} · ${p.images} photo${p.images === 1 ? "" : "s"}`;
    cap.append(title, count, nameForm(p.name ? "Rename (or merge)" : "Who is this?", async (name) => {
      const res = await postName(`people/${p.id}/name`, name);
      message(`Person ${res.person.id} is ${res.person.name} (${res.person.faces} faces)`, "ok");
      await loadPeople();
    }));
    if (p.name) {
      const photos = document.createElement("button");
      photos.type = "button";
      photos.className = "more";
      photos.textContent = "Photos";
      photos.addEventListener("click", () => {
        $("q").value = p.name;
        selectTab("search");
        runSearch("text", p.name);
      });
      cap.append(photos);
    }
    card.append(thumb, cap);
    return card;
  }));
}

async function showFaces(id) {
  try {
    const res = await api(`people/${id}`);
    const box = $("person-faces");
    const head = document.createElement("h3");
    head.textContent = `${res.person.name || `Unnamed #${id}`}: ${res.faces.length} faces (name one face to move it to another person)`;
    const row = document.createElement("div");
    row.className = "face-row";
    row.replaceChildren(...res.faces.map((f) => {
      const fig = document.createElement("figure");
      fig.className = "face";
      fig.append(faceImg(f.url, `face ${f.index} of image ${f.image_id}`));
      const cap = document.createElement("figcaption");
      cap.textContent = `${f.image_id}:${f.index} · ${f.score.toFixed(2)}${f.pinned ? " · placed by you" : ""}`;
      fig.append(cap, nameForm("Move to…", async (name) => {
        const moved = await postName(`images/${f.image_id}/faces/${f.index}/name`, name);
        message(`Face ${f.image_id}:${f.index} is now ${moved.person.name}`, "ok");
        await loadPeople();
        await showFaces(id);
      }));
      return fig;
    }));
    box.replaceChildren(head, row);
    box.hidden = false;
  } catch (err) {
    message(err.message, "error");
  }
}

$("tab-people").addEventListener("click", () => {
  selectTab("people");
  $("person-faces").hidden = true;
  loadPeople();
});
