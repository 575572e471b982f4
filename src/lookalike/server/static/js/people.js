// The People view: people found in the faces (GET /api/people), naming one (a name another person has merges
// the two), a person's faces with "Move to…" (naming one face splits it off), and a person's photos (a search
// by the name in the Photos view). Registered by app.js after the other views; #view=people opens it. In the
// photo viewer's "people" slot: who each face of the photo is, and a box to name (or move) each face.
import { api } from "./api.js";
import * as photos from "./photos.js";
import { el, plural, setMessage } from "./util.js";
import { registerViewerSection, selectView } from "./views.js";

let panel = null;
const part = (name) => panel.querySelector(`[data-part="${name}"]`);
const message = (text, kind = "") => setMessage(part("message"), text, kind);

function mount(p) {
  panel = p;
  const msg = el("p", { className: "message", dataset: { part: "message" } });
  msg.id = "people-message";
  msg.setAttribute("role", "status");
  msg.setAttribute("aria-live", "polite");
  const faces = el("div", { id: "person-faces", className: "person-faces", hidden: true, dataset: { part: "faces" } });
  const grid = el("div", { id: "people", className: "grid", dataset: { part: "people" } });
  grid.setAttribute("aria-label", "People");
  panel.append(msg, faces, grid);
}

async function loadPeople() {
  message("Loading people…");
  try {
    const res = await api("people");
    renderPeople(res.people);
    if (res.people.length) message(plural(res.people.length, "person", "people"), "ok");
    else message("No faces yet: index with --faces (lookalike index --faces DIR).", "empty");
  } catch (err) {
    message(err.message, "error");
  }
}

function faceImg(url, alt) { return el("img", { loading: "lazy", src: url, alt }); }

function nameForm(label, onName) {
  const input = el("input", { placeholder: label, required: true, maxLength: 80 });
  input.setAttribute("aria-label", label);
  return el("form", {
    className: "person-name",
    onsubmit: async (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!name) return;
      try { await onName(name); } catch (err) { message(err.message, "error"); }
    },
  }, input, el("button", { type: "submit", textContent: "Name" }));
}

function searchName(name) {
  selectView("photos");
  document.getElementById("q").value = name;
  photos.search({ kind: "text", value: name });
}

function personCard(p) {
  const title = p.name || `Unnamed #${p.id}`;
  const thumb = el("button", { type: "button", className: "thumb", title: "Show this person's faces",
                               onclick: () => showFaces(p.id) }, p.sample ? faceImg(p.sample.url, title) : null);
  const cap = el("figcaption", {},
    el("div", { className: "person-title", textContent: title }),
    el("div", { className: "card-row", textContent: `${plural(p.faces, "face")} · ${plural(p.images, "photo")}` }),
    nameForm(p.name ? "Rename (or merge)" : "Who is this?", async (name) => {
      const res = await api(`people/${p.id}/name`, { json: { name } });
      message(`Person ${res.person.id} is ${res.person.name} (${plural(res.person.faces, "face")})`, "ok");
      await loadPeople();
    }),
    p.name ? el("button", { type: "button", className: "more", textContent: "Photos", onclick: () => searchName(p.name) })
      : null);
  return el("figure", { className: "card person", dataset: { id: p.id } }, thumb, cap);
}

function renderPeople(people) { part("people").replaceChildren(...people.map(personCard)); }

async function showFaces(id) {
  try {
    const res = await api(`people/${id}`);
    const box = part("faces");
    const row = el("div", { className: "person-face-row" }, ...res.faces.map((f) => el("figure", { className: "person-face" },
      faceImg(f.url, `face ${f.index} of image ${f.image_id}`),
      el("figcaption", {},
        el("span", { textContent: `${f.image_id}:${f.index} · ${f.score.toFixed(2)}${f.pinned ? " · placed by you" : ""}` }),
        nameForm("Move to…", async (name) => {
          const moved = await api(`images/${f.image_id}/faces/${f.index}/name`, { json: { name } });
          message(`Face ${f.image_id}:${f.index} is now ${moved.person.name}`, "ok");
          await loadPeople();
          await showFaces(id);
        })))));
    box.replaceChildren(el("h3", { textContent: `${res.person.name || `Unnamed #${id}`}: ${plural(res.faces.length, "face")} `
                                   + "(name one face to move it to another person)" }), row);
    box.hidden = false;
  } catch (err) {
    message(err.message, "error");
  }
}

export const peopleView = {
  id: "people", label: "People", mount,
  show() { part("faces").hidden = true; loadPeople(); },
};

// -- the viewer's "people" slot -----------------------------------------------------------------------------------
async function renderImagePeople(image, slot) {
  slot.replaceChildren();
  if (!image.faces || !image.faces.length) return;
  let res;
  try { res = await api(`images/${image.id}/people`); } catch (err) { return; }
  const rows = res.faces.map((f) => el("figure", { className: "person-face", dataset: { index: f.index } },
    faceImg(f.url, `face ${f.index}`),
    el("figcaption", {},
      f.name ? el("button", { type: "button", className: "linklike-button person-link", textContent: f.name,
                              onclick: () => { document.getElementById("viewer").close(); searchName(f.name); } })
        : el("span", { textContent: f.person ? `Unnamed #${f.person}` : "not clustered yet" }),
      nameForm(f.name ? "Someone else?" : "Who is this?", async (name) => {
        await api(`images/${image.id}/faces/${f.index}/name`, { json: { name } });
        await renderImagePeople(image, slot);
      }))));
  slot.replaceChildren(el("h3", { textContent: "People" }), el("div", { className: "person-face-row" }, ...rows));
}

registerViewerSection(renderImagePeople, { slot: "people" });
