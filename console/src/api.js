// Calls to the hub's HTTP API with the signed-in user's token and language.
import { language } from "./i18n.js";
import { paths } from "./paths.js";
import { session, signOut } from "./session.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || String(status));
    this.status = status;
    this.fields = Object.fromEntries((body?.errors || []).map((error) => [error.field, error.message]));
  }
}

// Told of every answer the plan refused (402), wherever it came from: the console shows the
// limit hit and the way to the billing page (main.jsx listens).
export const planRefusals = new Set();

export async function api(method, path, body, { raw = false } = {}) {
  const headers = { "accept-language": language };
  const token = session.value?.access_token;
  if (token) headers.authorization = `Bearer ${token}`;
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const answer = await fetch(path, { method, headers, body: payload });
  // Refused for a token this tab has since replaced (an answer that crossed a new password's
  // session on the way): the session now held is not the one refused, and stays.
  if (answer.status === 401 && token && session.value?.access_token === token) {
    signOut({ expired: true });
  }
  if (!answer.ok) {
    let error = {};
    try {
      error = await answer.json();
    } catch {}
    const failure = new ApiError(answer.status, error);
    if (answer.status === 402) planRefusals.forEach((listener) => listener(failure));
    throw failure;
  }
  if (raw) return answer;
  if (answer.status === 204) return null;
  return answer.json();
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const put = (path, body) => api("PUT", path, body);
export const remove = (path) => api("DELETE", path);

export function query(path, params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    // A list is the same parameter repeated, as the API reads it (status=open&status=pending).
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== "") search.append(key, one);
    }
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

// Every page of a cursor-paginated list, up to `most` items.
export async function all(path, params = {}, most = 1000) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(query(path, { ...params, cursor, limit: 200 }));
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < most);
  return items;
}

export async function upload(file) {
  const form = new FormData();
  form.append("file", file);
  return api("POST", paths.media, form);
}
