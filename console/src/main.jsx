// The console: signs people in, lays out the pages their role allows, and keeps them live.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { languageChanged, LanguageSwitch, PasswordButton, passwordChange } from "./account.jsx";
import { get, planRefusals, post } from "./api.js";
import { Icon, Link, toast, Toasts } from "./components/ui.jsx";
import { initialLanguage, language, loadLanguage, t } from "./i18n.js";
import { events } from "./events.js";
import { connected, connectLive, disconnectLive, on } from "./live.js";
import { AcceptInvitation, ForgotPassword, Login, Register, ResetPassword } from "./pages/auth.jsx";
import { Billing } from "./pages/billing.jsx";
import { CampaignPage, Campaigns, NewCampaign } from "./pages/campaigns.jsx";
import { Channels, ConnectWhatsapp } from "./pages/channels.jsx";
import { CustomerPage, Customers } from "./pages/customers.jsx";
import { Inbox } from "./pages/inbox.jsx";
import { Overview } from "./pages/overview.jsx";
import { Pipeline } from "./pages/pipeline.jsx";
import { Settings } from "./pages/settings.jsx";
import { Team } from "./pages/team.jsx";
import { TicketPage, Tickets } from "./pages/tickets.jsx";
import { paths } from "./paths.js";
import { location, match, navigate, pathOf } from "./router.js";
import { can, canBilling, session, signIn, signOut } from "./session.js";
import { useStore } from "./store.js";
import { roleName } from "./words.js";

const PUBLIC = {
  "/login": Login,
  "/register": Register,
  "/forgot-password": ForgotPassword,
  "/reset-password": ResetPassword,
  "/accept-invitation": AcceptInvitation,
};

// Each page, the area its role must read (or write), and where it sits in the navigation.
const PAGES = [
  { path: "/overview", page: Overview, everyone: true, icon: "home", label: () => t("Overview") },
  { path: "/inbox", page: Inbox, area: "whatsapp", icon: "inbox", label: () => t("Inbox") },
  { path: "/inbox/:id", page: Inbox, area: "whatsapp" },
  { path: "/customers", page: Customers, area: "crm", icon: "customers", label: () => t("Customers") },
  { path: "/customers/:id", page: CustomerPage, area: "crm" },
  { path: "/pipeline", page: Pipeline, area: "crm", icon: "pipeline", label: () => t("Pipeline") },
  { path: "/tickets", page: Tickets, area: "ticketing", icon: "tickets", label: () => t("Tickets") },
  { path: "/tickets/:id", page: TicketPage, area: "ticketing" },
  { path: "/campaigns", page: Campaigns, area: "campaigns", icon: "campaigns", label: () => t("Campaigns") },
  { path: "/campaigns/new", page: NewCampaign, area: "campaigns", level: "write" },
  { path: "/campaigns/:id", page: CampaignPage, area: "campaigns" },
  { path: "/channels", page: Channels, area: "settings", icon: "channels", label: () => t("Channels") },
  { path: "/channels/whatsapp/:id", page: ConnectWhatsapp, area: "settings" },
  { path: "/team", page: Team, area: "users", icon: "team", label: () => t("Team") },
  { path: "/settings", page: Settings, area: "settings", icon: "settings", label: () => t("Settings") },
  { path: "/billing", page: Billing, area: "billing", billed: true, icon: "billing", label: () => t("Billing") },
];

// Whatever the plan refused (402), wherever it was asked: what limit was hit, and for those who
// read billing the way to the billing page.
const toBilling = () => (canBilling() ? { href: "/billing", label: t("See plans and billing") } : null);
planRefusals.add((failure) => toast(failure.message, "error", toBilling()));
// Admins hear when a limit of the plan is 80% used, and when it is used up.
on(events.usageUpdated, (data) => {
  const used = data.percent >= 100 ? t("A limit of your plan is used up.") : t("80% of a limit of your plan is used.");
  toast(used, data.percent >= 100 ? "error" : "info", toBilling());
});

function allowed(entry) {
  if (entry.billed) return canBilling(entry.level || "read");
  return entry.everyone || can(entry.area, entry.level || "read");
}

function Shell({ path }) {
  const current = useStore(session);
  const online = useStore(connected);
  const entry = PAGES.map((item) => ({ item, found: match(item.path, path) })).find(({ found }) => found);
  const navigation = PAGES.filter((item) => item.icon && allowed(item));
  if (!entry || !allowed(entry.item)) {
    const first = navigation[0];
    if (first && path !== first.path) {
      setTimeout(() => navigate(first.path, { replace: true }));
    }
    return null;
  }
  const Page = entry.item.page;
  return (
    <div class="shell">
      <nav class="sidebar" aria-label={t("Main")}>
        <div class="brand">{current.organization.name}</div>
        <ul>
          {navigation.map((item) => (
            <li key={item.path}>
              <Link
                href={item.path}
                class={path === item.path || path.startsWith(`${item.path}/`) ? "active" : ""}
                data-nav={item.path.slice(1)}
              >
                <Icon name={item.icon} />
                <span>{item.label()}</span>
              </Link>
            </li>
          ))}
        </ul>
        <div class="sidebar-foot">
          <div class="who">
            <strong>{current.user.full_name}</strong>
            <span class="muted">{roleName(current.user.role)}</span>
          </div>
          <span class={`connection ${online ? "online" : "offline"}`} data-connected={online ? "yes" : "no"}>
            {online ? t("Live") : t("Reconnecting…")}
          </span>
          <LanguageSwitch />
          <PasswordButton />
          <button
            type="button"
            class="link-button"
            data-action="logout"
            onClick={async () => {
              disconnectLive(); // the hub's "session ended" for this logout is not news to us
              try {
                await post(paths.auth.logout);
              } finally {
                signOut();
                navigate("/login");
              }
            }}
          >
            <Icon name="logout" /> {t("Log out")}
          </button>
        </div>
      </nav>
      <main class="content">
        <Page {...entry.found} />
      </main>
    </div>
  );
}

function App() {
  const current = useStore(session);
  const here = useStore(location);
  const [, redraw] = useState(0);
  const path = pathOf(here);
  useEffect(() => {
    const listener = () => redraw((n) => n + 1);
    languageChanged.add(listener);
    return () => languageChanged.delete(listener);
  }, []);
  useEffect(() => {
    if (!current) {
      disconnectLive();
      return;
    }
    const refused = () => signOut({ expired: true });
    // Still signed in (a changed role): the session answer gives the new permissions, and the
    // socket comes back with the rooms that fit them. Signed out: back to the login page.
    const ended = async () => {
      try {
        if (passwordChange) await passwordChange.catch(() => null); // this tab changed it: the new session comes
        const full = await get(paths.auth.me);
        signIn(full);
        connectLive(full.access_token, refused, ended);
      } catch {
        signOut({ expired: true });
      }
    };
    connectLive(current.access_token, refused, ended);
  }, [current?.access_token]);
  const Public = PUBLIC[path];
  if (Public) {
    if (current && path !== "/accept-invitation" && path !== "/reset-password") {
      setTimeout(() => navigate("/inbox", { replace: true }));
      return null;
    }
    return <Public key={language} />;
  }
  if (!current) {
    setTimeout(() => navigate("/login", { replace: true }));
    return null;
  }
  return <Shell key={language} path={path === "/" ? "/inbox" : path} />;
}

async function start() {
  // The session is checked while the words load: neither waits for the other.
  // Only a refused token signs out (the request itself does that); a hub slow or away for a
  // moment leaves the session as kept, and the pages load when it answers.
  const checking = session.value ? get(paths.auth.me).catch(() => null) : Promise.resolve(null);
  await loadLanguage(initialLanguage());
  const full = await checking;
  if (full && session.value) {
    signIn(full);
    if (full.user.preferred_language && full.user.preferred_language !== language) {
      await loadLanguage(full.user.preferred_language);
    }
  }
  render(
    <>
      <App />
      <Toasts />
    </>,
    document.getElementById("app"),
  );
}

start();
