// The console's words come from the hub's gettext catalogs; t() looks them up by their English text.
import { paths } from "./paths.js";

let messages = {};
export let language = document.documentElement.lang || "ar";

export function t(message, params) {
  let text = messages[message] || message;
  if (params) text = text.replace(/\{(\w+)\}/g, (whole, key) => (key in params ? String(params[key]) : whole));
  return text;
}

// The page carries its own language's words; another language is fetched.
function inlineWords(wanted) {
  const element = document.getElementById("console-messages");
  const body = element && JSON.parse(element.textContent);
  return body && body.language === wanted ? body : null;
}

export async function loadLanguage(wanted) {
  const body = inlineWords(wanted) || (await (await fetch(paths.consoleMessages(wanted))).json());
  messages = body.messages;
  language = body.language;
  document.documentElement.lang = language;
  document.documentElement.dir = body.direction;
  document.title = t("Hub");
  localStorage.setItem("hub.language", language);
  document.cookie = `hub_language=${language}; path=/; max-age=31536000; samesite=lax`;
}

export function initialLanguage() {
  return localStorage.getItem("hub.language") || document.documentElement.lang || "ar";
}

export const isRtl = () => document.documentElement.dir === "rtl";

// Intl formatters are slow to build (a list of a hundred dates would spend most of its time
// there), so each one is built once per language and options.
const formatters = new Map();
function formatter(kind, options) {
  const key = `${kind}|${language}|${JSON.stringify(options || {})}`;
  if (!formatters.has(key)) formatters.set(key, new Intl[kind](language, options));
  return formatters.get(key);
}

export function formatNumber(value, options) {
  return formatter("NumberFormat", options).format(value ?? 0);
}

export function formatMoney(value, currency) {
  if (value == null) return "";
  try {
    return formatter("NumberFormat", { style: "currency", currency: currency || "USD" }).format(value);
  } catch {
    return formatNumber(value);
  }
}

export function formatDateTime(value, options = { dateStyle: "medium", timeStyle: "short" }) {
  if (!value) return "";
  return formatter("DateTimeFormat", options).format(new Date(value));
}

export function formatTime(value) {
  if (!value) return "";
  const moment = new Date(value);
  const today = new Date();
  const sameDay = moment.toDateString() === today.toDateString();
  return formatter("DateTimeFormat", sameDay ? { timeStyle: "short" } : { dateStyle: "short" }).format(moment);
}

// "in 5 minutes" / "3 hours ago", in the reader's language.
export function formatRelative(value, now = Date.now()) {
  const seconds = Math.round((new Date(value).getTime() - now) / 1000);
  const format = formatter("RelativeTimeFormat", { numeric: "auto" });
  const steps = [
    [60, "second"],
    [3600, "minute"],
    [86400, "hour"],
    [Infinity, "day"],
  ];
  let size = 1;
  for (const [limit, unit] of steps) {
    if (Math.abs(seconds) < limit) return format.format(Math.round(seconds / size), unit);
    size = limit;
  }
  return "";
}

export function formatDuration(totalSeconds) {
  const seconds = Math.max(0, Math.round(totalSeconds));
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  const two = (n) => formatNumber(n, { minimumIntegerDigits: 2 });
  return hours ? `${formatNumber(hours)}:${two(minutes)}:${two(rest)}` : `${two(minutes)}:${two(rest)}`;
}
