// Pieces every page uses: icons, fields with their errors, dialogs, toasts, loading lists.
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { events } from "../events.js";
import { t } from "../i18n.js";
import { on } from "../live.js";
import { navigate } from "../router.js";
import { store, useStore } from "../store.js";

// Simple line icons; the directional ones are mirrored in right-to-left pages by their class.
const PATHS = {
  home: "M4 11l8-7 8 7v9h-5v-6H9v6H4z",
  inbox: "M4 13h4l2 3h4l2-3h4M4 13l2-8h12l2 8v6H4z",
  customers: "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM2 21v-1a6 6 0 0 1 12 0v1M17 11a3 3 0 1 0 0-6M22 21v-1a5 5 0 0 0-4-4.9",
  pipeline: "M4 4h4v16H4zM10 4h4v10h-4zM16 4h4v6h-4z",
  tickets: "M4 7h16v4a2 2 0 0 0 0 4v4H4v-4a2 2 0 0 0 0-4zM10 7v12",
  campaigns: "M3 11v3l12 5V6L3 11zM15 8h3a3 3 0 0 1 0 6h-3M6 14l1 5h3",
  channels: "M5 12a7 7 0 0 1 14 0M8.5 12a3.5 3.5 0 0 1 7 0M12 12v8",
  team: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21v-1a8 8 0 0 1 16 0v1",
  settings: "M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM19 12l2-1-2-4-2 1-2-1-1-2h-4l-1 2-2 1-2-1-2 4 2 1v0l-2 1 2 4 2-1 2 1 1 2h4l1-2 2-1 2 1 2-4z",
  send: "M4 12l16-8-6 16-3-7z",
  attach: "M20 11l-8.5 8.5a5 5 0 0 1-7-7L13 4a3.5 3.5 0 0 1 5 5l-8.5 8.5a2 2 0 0 1-3-3L14 7",
  back: "M15 5l-7 7 7 7",
  forward: "M9 5l7 7-7 7",
  reply: "M9 8L4 13l5 5M4 13h11a5 5 0 0 1 5 5v1",
  close: "M6 6l12 12M18 6L6 18",
  check: "M5 12l5 5 9-10",
  checks: "M2 12l5 5 9-10M12 16l1 1 9-10",
  clock: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM12 7v5l3 2",
  warn: "M12 3l10 18H2zM12 10v5M12 18v.5",
  edit: "M4 20h4L19 9l-4-4L4 16zM14 6l4 4",
  trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13",
  share: "M14 5l6 6-6 6M20 11H9a5 5 0 0 0-5 5v3",
  logout: "M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10",
  key: "M8 16a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM12 12h9M18 12v3M21 12v2",
  plus: "M12 5v14M5 12h14",
  search: "M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14zM21 21l-5-5",
  note: "M5 4h10l4 4v12H5zM14 4v5h5",
  billing: "M3 6h18v12H3zM3 10h18M7 15h4",
  sparkle: "M12 3l2 6 6 2-6 2-2 6-2-6-6-2 6-2z",
};
const DIRECTIONAL = new Set(["back", "forward", "reply", "send", "share", "logout"]);

export function Icon({ name, size = 18, label }) {
  return (
    <svg
      class={`icon${DIRECTIONAL.has(name) ? " icon-directional" : ""}`}
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      stroke-width="1.8"
      stroke-linecap="round"
      stroke-linejoin="round"
      role={label ? "img" : undefined}
      aria-label={label}
      aria-hidden={label ? undefined : "true"}
    >
      <path d={PATHS[name]} />
    </svg>
  );
}

export function Field({ label, error, children, hint }) {
  return (
    <label class={`field${error ? " has-error" : ""}`}>
      <span class="field-label">{label}</span>
      {children}
      {hint && !error && <span class="field-hint">{hint}</span>}
      {error && <span class="field-error" role="alert">{error}</span>}
    </label>
  );
}

// The state of a form: its values, the fields the hub refused, and a submit that shows both.
export function useForm(initial, submit) {
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState(null);
  const set = (name) => (event) => {
    const target = event.currentTarget;
    setValues((old) => ({ ...old, [name]: target.type === "checkbox" ? target.checked : target.value }));
  };
  const onSubmit = async (event) => {
    event?.preventDefault();
    setBusy(true);
    setErrors({});
    setFailure(null);
    try {
      await submit(values, setValues);
    } catch (error) {
      setErrors(error.fields || {});
      setFailure(error.fields && Object.keys(error.fields).length ? null : error.message);
    } finally {
      setBusy(false);
    }
  };
  return { values, setValues, set, errors, busy, failure, onSubmit };
}

export function Failure({ message }) {
  return message ? <p class="failure" role="alert">{message}</p> : null;
}

export function Modal({ title, onClose, children, wide }) {
  useEffect(() => {
    const escape = (event) => event.key === "Escape" && onClose();
    window.addEventListener("keydown", escape);
    return () => window.removeEventListener("keydown", escape);
  }, [onClose]);
  return (
    <div class="modal-backdrop" onClick={(event) => event.target === event.currentTarget && onClose()}>
      <div class={`modal${wide ? " wide" : ""}`} role="dialog" aria-modal="true" aria-label={title}>
        <header>
          <h2>{title}</h2>
          <button type="button" class="icon-button" onClick={onClose} aria-label={t("Close")}>
            <Icon name="close" />
          </button>
        </header>
        {children}
      </div>
    </div>
  );
}

const toasts = store([]);
let toastId = 0;

// A short message; `link` ({href, label}) adds where to go about it.
export function toast(text, kind = "info", link = null) {
  const id = ++toastId;
  toasts.set([...toasts.value, { id, text, kind, link }]);
  setTimeout(() => toasts.set(toasts.value.filter((item) => item.id !== id)), link ? 10000 : 5000);
}

export function Toasts() {
  const items = useStore(toasts);
  return (
    <div class="toasts" aria-live="polite">
      {items.map((item) => (
        <div key={item.id} class={`toast ${item.kind}`} data-toast={item.kind}>
          {item.text}
          {item.link && (
            <>
              {" "}
              <Link href={item.link.href} data-toast-link>
                {item.link.label}
              </Link>
            </>
          )}
        </div>
      ))}
    </div>
  );
}

// Load something, show it, and load it again when asked or after the socket reconnects.
export function useLoad(loader, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const latest = useRef(0);
  const underWay = useRef(false);
  const reload = useCallback(async () => {
    const ticket = ++latest.current;
    underWay.current = true;
    try {
      const data = await loader();
      if (ticket === latest.current) {
        underWay.current = false;
        setState({ data, error: null, loading: false });
      }
    } catch (error) {
      if (ticket === latest.current) {
        underWay.current = false;
        setState((old) => ({ ...old, error, loading: false }));
      }
    }
  }, deps);
  // Started as soon as the component is on the page, not a frame later.
  useLayoutEffect(() => {
    setState((old) => ({ ...old, loading: true }));
    reload();
  }, [reload]);
  useEffect(() => on(events.resync, reload), [reload]);
  // A change heard while a load is under way may be newer than what that load brings back (a
  // message that came in while the list was being read): read again instead.
  const update = (change) => {
    if (underWay.current) reload();
    else setState((old) => ({ ...old, data: change(old.data) }));
  };
  return { ...state, reload, update };
}

// The time now, renewed every second: for countdowns and estimated finishes.
export function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

// A value that settles: what was typed, once typing pauses, so a search is not sent per key.
export function useSettled(value, delay = 250) {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), delay);
    return () => clearTimeout(timer);
  }, [value, delay]);
  return settled;
}

// A cursor-paginated list: the first page loads like useLoad; more() appends the next one.
export function usePagedLoad(fetchPage, deps) {
  const cursor = useRef(null);
  const [hasMore, setHasMore] = useState(false);
  const state = useLoad(async () => {
    const page = await fetchPage(null);
    cursor.current = page.next_cursor;
    setHasMore(!!page.next_cursor);
    return page.items;
  }, deps);
  const fetching = useRef(false);
  const more = async () => {
    if (!cursor.current || fetching.current) return;
    fetching.current = true;
    let page;
    try {
      page = await fetchPage(cursor.current);
    } finally {
      fetching.current = false;
    }
    cursor.current = page.next_cursor;
    setHasMore(!!page.next_cursor);
    state.update((items) => {
      const shown = new Set((items || []).map((item) => item.id));
      return [...(items || []), ...page.items.filter((item) => !shown.has(item.id))];
    });
  };
  return { ...state, more, hasMore };
}

export function MoreButton({ list }) {
  const [busy, setBusy] = useState(false);
  if (!list.hasMore) return null;
  return (
    <button
      type="button"
      class="link-button load-more"
      data-action="more"
      disabled={busy}
      onClick={async () => {
        setBusy(true);
        try {
          await list.more();
        } catch (error) {
          toast(error.message, "error");
        } finally {
          setBusy(false);
        }
      }}
    >
      {t("Show more")}
    </button>
  );
}

export function Loading({ state, children }) {
  if (state.error) return <p class="failure" role="alert">{state.error.message}</p>;
  if (state.data == null) return <p class="muted loading">{t("Loading…")}</p>;
  return children(state.data);
}

export function Empty({ children }) {
  return <p class="empty">{children}</p>;
}

export function Avatar({ name }) {
  const letters = (name || "?")
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => [...word][0])
    .join("");
  return <span class="avatar" aria-hidden="true">{letters.toUpperCase()}</span>;
}

export function PageHeader({ title, children }) {
  return (
    <header class="page-header">
      <h1>{title}</h1>
      <div class="actions">{children}</div>
    </header>
  );
}

export function Tabs({ items, value, onChange }) {
  return (
    <div class="tabs" role="tablist">
      {items.map(([key, label]) => (
        <button
          type="button"
          role="tab"
          key={key}
          aria-selected={value === key}
          class={value === key ? "active" : ""}
          onClick={() => onChange(key)}
        >
          {label}
        </button>
      ))}
    </div>
  );
}

// A link that changes page without reloading it.
export function Link({ href, children, ...rest }) {
  const follow = (event) => {
    if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={follow} {...rest}>
      {children}
    </a>
  );
}

