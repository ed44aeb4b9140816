// Who is signed in: kept in the browser so a reload stays signed in until the token expires.
import { store } from "./store.js";

const saved = JSON.parse(localStorage.getItem("hub.session") || "null");
export const session = store(saved && new Date(saved.expires_at) > new Date() ? saved : null);
export const notice = store(null);

export function signIn(answer) {
  localStorage.setItem("hub.session", JSON.stringify(answer));
  session.set(answer);
}

export function signOut({ expired = false } = {}) {
  localStorage.removeItem("hub.session");
  session.set(null);
  if (expired) notice.set("expired");
}

export function can(area, level = "read") {
  const granted = session.value?.permissions?.[area] || "none";
  const order = { none: 0, read: 1, write: 2 };
  return order[granted] >= order[level];
}

// Billing exists where the installation bills; then its role levels apply.
export const canBilling = (level = "read") => !!session.value?.billing && can("billing", level);

export const role = () => session.value?.user?.role;
export const userId = () => session.value?.user?.id;
