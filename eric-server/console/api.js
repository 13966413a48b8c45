// Calls to eric's HTTP API from the console: the token, and eric's error
// shape ({"error": {"code", "message"}}) turned into an ApiError.

const TOKEN_KEY = "eric.console.token";

// The token lives in sessionStorage: it survives a reload of this tab and
// is gone when the tab closes; no other tab or origin sees it.
export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  } else {
    sessionStorage.removeItem(TOKEN_KEY);
  }
}

// An answer other than 2xx, as eric reports it.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.detail = message;
  }
}

// The ApiError of a failed response: eric's code and message when the body
// is eric's error shape, else the HTTP status (a proxy's page, say).
export async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: reported by status below.
  }
  const error = body && body.error;
  if (error && typeof error.code === "string") {
    return new ApiError(response.status, error.code, String(error.message ?? ""));
  }
  return new ApiError(response.status, `http_${response.status}`, response.statusText || "request failed");
}

export function headers(extra = {}) {
  const all = { ...extra };
  const held = token();
  if (held) {
    all.Authorization = `Bearer ${held}`;
  }
  return all;
}

// A path segment: ids may hold `/`, `?` or `%`.
export function seg(id) {
  return encodeURIComponent(id);
}

// Calls the API; resolves to the parsed JSON body (null when there is
// none), rejects with an ApiError. `text: true` resolves to the body text.
export async function call(method, path, { body, text = false } = {}) {
  const init = { method, headers: headers(), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "unreachable", `the node did not answer (${e.message})`);
  }
  if (!response.ok) {
    throw await errorOf(response);
  }
  if (text) {
    return response.text();
  }
  if (response.status === 204) {
    return null;
  }
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : null;
}
