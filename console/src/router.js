// Paths in the address bar, without reloads: navigate() and <Link>.
import { store } from "./store.js";

export const location = store(window.location.pathname + window.location.search);

// The billing page is a document of its own: it alone may load Stripe's script, so its Content
// Security Policy differs, and going to it or from it loads the page afresh.
export const OWN_DOCUMENT = "/billing";

export function navigate(to, { replace = false } = {}) {
  if (to === location.value) return;
  if ((pathOf(to) === OWN_DOCUMENT) !== (pathOf(location.value) === OWN_DOCUMENT)) {
    window.location[replace ? "replace" : "assign"](to);
    return;
  }
  history[replace ? "replaceState" : "pushState"](null, "", to);
  location.set(to);
}

window.addEventListener("popstate", () => location.set(window.location.pathname + window.location.search));

export function pathOf(value) {
  return value.split("?")[0];
}

export function params(value) {
  return new URLSearchParams(value.split("?")[1] || "");
}

// `/inbox/:id` against `/inbox/123` gives {id: "123"}; null when it does not match.
export function match(pattern, path) {
  const want = pattern.split("/");
  const have = path.split("/");
  if (want.length !== have.length) return null;
  const found = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) found[want[i].slice(1)] = decodeURIComponent(have[i]);
    else if (want[i] !== have[i]) return null;
  }
  return found;
}
