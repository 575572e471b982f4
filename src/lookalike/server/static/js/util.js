// Small DOM helpers shared by the views.
export const $ = (id) => document.getElementById(id);

// el("li", {className: "tag", title: "x"}, "text", child...) — text is always inserted as text
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function plural(n, one, many = `${one}s`) { return `${n} ${n === 1 ? one : many}`; }

export function bytes(n) {
  if (!n && n !== 0) return "";
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(0)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

export function dateText(iso, mtime) {
  if (iso) return iso.replace("T", " ");
  if (mtime) return `${new Date(mtime * 1000).toISOString().slice(0, 19).replace("T", " ")} (file date)`;
  return "";
}

export function setMessage(node, text, kind = "") {
  node.textContent = text;
  node.dataset.kind = kind;
}

// A yes/no question in the page's own dialog; resolves true only for the OK button.
export function confirmDialog(text, okLabel = "OK") {
  const dlg = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("confirm-ok").onclick = $("confirm-cancel").onclick = dlg.oncancel = null;
      if (dlg.open) dlg.close();
      resolve(answer);
    };
    $("confirm-ok").onclick = () => done(true);
    $("confirm-cancel").onclick = () => done(false);
    dlg.oncancel = () => done(false);
    dlg.showModal();
    $("confirm-cancel").focus();
  });
}
