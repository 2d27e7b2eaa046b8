// The gateway's API as the console uses it: same origin, the access token in memory only,
// the refresh token in an HttpOnly cookie that only /api/v1/auth/session/* ever sees.

const SESSION = "/api/v1/auth/session";
// Our CSRF marker: a page of another origin cannot add it without a CORS preflight.
const CLIENT = { "X-Taskmesh-Client": "console" };

let accessToken = null;
let refreshTimer = null;
let refreshing = null;
const listeners = new Set();

/** An answer other than 2xx/304, with what a person needs to know about it. */
export class ApiError extends Error {
  constructor(response, problem, path) {
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    super(problem?.detail || problem?.title || `HTTP ${response.status}`);
    this.status = response.status;
    this.problem = problem;
    this.path = path;
    this.retryAfter = Number.isFinite(retryAfter) ? retryAfter : null;
    this.retryAt = this.retryAfter === null ? null : new Date(Date.now() + this.retryAfter * 1000);
  }

  /** The part of the suite behind a path, as a person would name it. */
  get part() {
    if (this.path.startsWith("/api/v1/tasks")) return "the task service";
    if (this.path.startsWith("/api/v1/analytics")) return "the statistics service";
    return "the account service";
  }

  /** One sentence for the page. */
  explain() {
    const when = this.retryAt ? this.retryAt.toLocaleTimeString() : null;
    if (this.status === 429) {
      return `Too many requests. Retry in ${this.retryAfter ?? "a few"} s${when ? ` (at ${when})` : ""}.`;
    }
    if (this.status === 503) {
      return `${capitalise(this.part)} is unavailable right now; the rest keeps working.${
        when ? ` Retry at ${when}.` : ""
      }`;
    }
    if (this.status === 599) return "The gateway cannot be reached.";
    return this.message;
  }
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Called with the signed-in state (true/false) whenever it changes. */
export function onSession(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function setToken(token, expiresIn) {
  const was = accessToken !== null;
  accessToken = token;
  clearTimeout(refreshTimer);
  if (token && expiresIn) {
    // Renew a minute early, so a request never carries an expired token.
    refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.max(5, expiresIn - 60) * 1000);
  }
  if (was !== (token !== null)) listeners.forEach((listener) => listener(token !== null));
}

async function send(method, path, { body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(new Response(null, { status: 599 }), { detail: "The gateway cannot be reached" }, path);
  }
  return response;
}

async function parse(response, path) {
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") && response.status !== 204 ? await response.json() : null;
  if (!response.ok && response.status !== 304) throw new ApiError(response, data, path);
  return data;
}

async function sessionCall(action, body) {
  const path = `${SESSION}/${action}`;
  const response = await send("POST", path, { body, headers: CLIENT });
  return parse(response, path);
}

/** Log in; the refresh cookie is set by the answer. */
export async function login(email, password) {
  const tokens = await sessionCall("login", { email, password });
  setToken(tokens.access_token, tokens.expires_in);
}

/** One refresh at a time across every tab of this origin: two tabs spending the same
 * cookie at once would look like a stolen token replayed, and end the session. */
function exclusively(work) {
  return navigator.locks ? navigator.locks.request("taskmesh-refresh", work) : work();
}

/** A new access token from the refresh cookie (rotated by the answer); one at a time. */
export function refresh() {
  refreshing ??= exclusively(() => sessionCall("refresh"))
    .then((tokens) => {
      setToken(tokens.access_token, tokens.expires_in);
      return true;
    })
    .catch((error) => {
      if (error.status === 401) setToken(null);
      throw error;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** The session a reload left in the cookie, if any: true when signed in again. */
export async function resume() {
  try {
    return await refresh();
  } catch (error) {
    if (error.status === 401) return false;
    throw error;
  }
}

export async function logout() {
  try {
    await sessionCall("logout");
  } finally {
    setToken(null);
  }
}

/** A call with the access token; one refresh and retry when the token was refused. */
export async function request(method, path, options = {}) {
  const withToken = () =>
    send(method, path, {
      ...options,
      headers: { ...(options.headers || {}), ...(accessToken ? { Authorization: `Bearer ${accessToken}` } : {}) },
    });
  let response = await withToken();
  if (response.status === 401 && accessToken) {
    await refresh();
    response = await withToken();
  }
  const data = await parse(response, path);
  return { data, etag: response.headers.get("ETag"), status: response.status };
}

export const get = (path) => request("GET", path).then((r) => r.data);

export function register(email, password, displayName) {
  const body = { email, password };
  if (displayName) body.display_name = displayName;
  return send("POST", "/api/v1/auth/register", { body }).then((r) => parse(r, "/api/v1/auth/register"));
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
