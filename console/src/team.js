// The organization's people, for names and for assignment; loaded once per page view.
import { all } from "./api.js";
import { can } from "./session.js";

let loading = null;

export function loadTeam() {
  if (!can("users", "read")) return Promise.resolve([]);
  loading = loading || all("/api/users").catch(() => []);
  return loading;
}

export function forgetTeam() {
  loading = null;
}
