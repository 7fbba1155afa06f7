// The public API, on this origin: the console at <prefix>/console/ calls <prefix>/v1/.
// The key is held in memory and in this tab's sessionStorage only (never localStorage, never a URL).

const KEY_SLOT = "loyalty-console-key";
export const API_BASE = new URL("../v1", document.baseURI).href;

let key = sessionStorage.getItem(KEY_SLOT);
let caller = null; // GET /v1/me: {tenant, api_key}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function signedIn() {
  return key !== null;
}

export function me() {
  return caller;
}

export function remember(secret) {
  key = secret;
  sessionStorage.setItem(KEY_SLOT, secret);
}

export function forget() {
  key = null;
  caller = null;
  sessionStorage.removeItem(KEY_SLOT);
}

// What the signed-in key may do: admin grants read and write; read and write only themselves.
export function can(scope) {
  const scopes = (caller && caller.api_key.scopes) || [];
  return scopes.includes("admin") || scopes.includes(scope);
}

// One user action, one key: a double click (or a retry) of the same action credits once.
export function newIdempotencyKey() {
  if (crypto.randomUUID) return "console-" + crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function url(path, query) {
  const target = new URL(API_BASE + path);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(name, value);
  }
  return target.href;
}

async function send(method, path, { body, query, idempotencyKey, accept } = {}) {
  const headers = { Accept: accept || "application/json" };
  if (key) headers.Authorization = "Bearer " + key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  let response;
  try {
    response = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (failure) {
    throw new ApiError(0, "network_error", "The API could not be reached: " + failure.message);
  }
  if (response.ok) return response;
  let error = null;
  try {
    error = (await response.json()).error;
  } catch {
    error = null;
  }
  if (error && error.code) throw new ApiError(response.status, error.code, error.message, error.details);
  throw new ApiError(response.status, response.status === 404 ? "not_found" : "http_" + response.status,
    `${method} ${path} answered ${response.status}`);
}

export async function call(method, path, options) {
  const response = await send(method, path, options);
  return response.status === 204 ? null : response.json();
}

export const get = (path, query) => call("GET", path, { query });

export async function text(path, query) {
  const response = await send("GET", path, { query, accept: "text/csv" });
  return response.text();
}

// Who is calling: the tenant and the key's scopes (a refused key answers 401).
export async function signIn(secret) {
  const previous = key;
  key = secret;
  try {
    caller = await get("/me");
  } catch (failure) {
    key = previous;
    throw failure;
  }
  remember(secret);
  return caller;
}

export async function resume() {
  caller = await get("/me");
  return caller;
}
