// The REST API under ./api/ and its token. Everything the server sends is shown as text, never as HTML.
const TOKEN_KEY = "lookalike_token";

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let onLocked = () => {};
export function whenLocked(fn) { onLocked = fn; }

export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    options = { ...options, method: options.method || "POST", body: JSON.stringify(options.json) };
    delete options.json;
  }
  let resp;
  try {
    resp = await fetch(`api/${path}`, { ...options, headers });
  } catch (err) {
    if (err.name === "TimeoutError") throw new ApiError(0, "the server did not answer in time");
    throw new ApiError(0, "the server cannot be reached");
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    if (resp.status === 401) onLocked();
    throw new ApiError(resp.status, body.error || `HTTP ${resp.status}`);
  }
  return body;
}

// A GET that a busy or restarting server may fail once in a while (5xx, a dropped connection, no answer within
// `timeoutMs`: a request lost on its way would otherwise stall whatever awaits it for good): tried again, a
// delay apart, up to `tries` times; a 4xx answer is final at once.
export async function apiPatient(path, { tries = 5, delayMs = 800, timeoutMs = 20000 } = {}) {
  for (let i = 1; ; i++) {
    try {
      return await api(path, { signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      if (i >= tries || (err.status >= 400 && err.status < 500)) throw err;
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

export function saveToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
  // <img> requests cannot send headers: the same token as a same-site cookie lets thumbnails load
  document.cookie = `${TOKEN_KEY}=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
}

export function restoreToken() {
  const saved = localStorage.getItem(TOKEN_KEY);
  if (saved) saveToken(saved);
}
