// The overview: what waits in the inbox and the tickets, the campaigns under way, the last 30
// days of SLA targets and this month's usage, each shown only to those whose role reads it.
import { useEffect, useRef } from "preact/hooks";
import { get, query } from "../api.js";
import { handled, ProgressBar, useCampaignsLive } from "../components/progress.jsx";
import { Empty, Link, Loading, PageHeader, useLoad } from "../components/ui.jsx";
import { PlanUsage, Usage } from "../components/usage.jsx";
import { events } from "../events.js";
import { formatNumber, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";
import { can, canBilling, role } from "../session.js";
import { campaignStatusName, priorityName } from "../words.js";

// How many a list holds, read from its pages up to 200 ("200+" beyond).
async function count(path, params) {
  const page = await get(query(path, { ...params, limit: 200 }));
  return { value: page.items.length, more: !!page.next_cursor };
}

function shown(total) {
  return total.more ? `${formatNumber(total.value)}+` : formatNumber(total.value);
}

// Reload at most once a second however many events arrive.
function useCalmReload(names, reload) {
  const timer = useRef(null);
  useLive(names, () => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      reload();
    }, 1000);
  });
  useEffect(() => () => clearTimeout(timer.current), []);
}

function Tile({ label, total, href, name }) {
  return (
    <Link href={href} class="tile" data-tile={name}>
      <span class="tile-value">{shown(total)}</span>
      <span class="tile-label">{label}</span>
    </Link>
  );
}

function InboxTiles() {
  const agent = role() === "agent";
  const counts = useLoad(async () => {
    const [mine, unassigned, open] = await Promise.all([
      count(paths.inbox.conversations, { assignee: "me", status: "open" }),
      agent ? null : count(paths.inbox.conversations, { assignee: "unassigned", status: "open" }),
      agent ? null : count(paths.inbox.conversations, { status: "open" }),
    ]);
    return { mine, unassigned, open };
  }, []);
  useCalmReload([events.newMessage, events.conversationUpdated, events.conversationUnassigned], counts.reload);
  return (
    <section class="card stack">
      <h2>{t("Inbox")}</h2>
      <Loading state={counts}>
        {(data) => (
          <div class="tiles">
            <Tile label={t("Open and mine")} total={data.mine} href="/inbox" name="mine" />
            {data.unassigned && <Tile label={t("Open, waiting for someone")} total={data.unassigned} href="/inbox" name="unassigned" />}
            {data.open && <Tile label={t("Open in all")} total={data.open} href="/inbox" name="open" />}
          </div>
        )}
      </Loading>
    </section>
  );
}

function TicketTiles() {
  const counts = useLoad(async () => {
    const working = ["open", "in_progress"];
    const [mine, breached, open] = await Promise.all([
      count(paths.tickets.list, { assignee: "me", status: working }),
      count(paths.tickets.list, { breached: "true", status: working }),
      count(paths.tickets.list, { status: working }),
    ]);
    return { mine, breached, open };
  }, []);
  useCalmReload([events.ticketCreated, events.ticketUpdated, events.ticketAssigned, events.slaBreached], counts.reload);
  return (
    <section class="card stack">
      <h2>{t("Tickets")}</h2>
      <Loading state={counts}>
        {(data) => (
          <div class="tiles">
            <Tile label={t("Being worked on, mine")} total={data.mine} href="/tickets" name="my-tickets" />
            <Tile label={t("Being worked on")} total={data.open} href="/tickets" name="tickets" />
            <Tile label={t("Past an SLA target")} total={data.breached} href="/tickets" name="breached" />
          </div>
        )}
      </Loading>
    </section>
  );
}

function RunningCampaigns() {
  const campaigns = useLoad(
    () => get(query(paths.campaigns.list, { status: ["running", "paused", "scheduled"], limit: 20 })).then((page) => page.items),
    [],
  );
  useCampaignsLive(campaigns);
  return (
    <section class="card stack">
      <h2>{t("Campaigns under way")}</h2>
      <Loading state={campaigns}>
        {(items) =>
          items.length ? (
            <ul class="mini-list">
              {items.map((campaign) => (
                <li key={campaign.id}>
                  <Link href={`/campaigns/${campaign.id}`}>{campaign.name}</Link>
                  <span class="muted">
                    {campaignStatusName(campaign.status)} · {formatNumber(handled(campaign))} / {formatNumber(campaign.total)}
                  </span>
                  <ProgressBar current={handled(campaign)} total={campaign.total} />
                </li>
              ))}
            </ul>
          ) : (
            <Empty>{t("No campaign is sending or waiting to.")}</Empty>
          )
        }
      </Loading>
    </section>
  );
}

function SlaSummary() {
  const report = useLoad(() => get(paths.tickets.slaReport), []);
  const percent = (share) => (share.share_met == null ? "—" : formatNumber(share.share_met, { style: "percent" }));
  return (
    <section class="card stack">
      <h2>{t("SLA targets met, last 30 days")}</h2>
      <Loading state={report}>
        {(data) =>
          data.by_priority.length ? (
            <table class="table compact">
              <thead>
                <tr><th>{t("Priority")}</th><th>{t("Tickets")}</th><th>{t("First response")}</th><th>{t("Resolution")}</th></tr>
              </thead>
              <tbody>
                {data.by_priority.map((row) => (
                  <tr key={row.priority}>
                    <td>{priorityName(row.priority)}</td>
                    <td>{formatNumber(row.resolution.tickets)}</td>
                    <td>{percent(row.first_response)}</td>
                    <td>{percent(row.resolution)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>{t("No tickets in these 30 days.")}</Empty>
          )
        }
      </Loading>
    </section>
  );
}

// What the assistant that answers customers did in the last 30 days (where it is on).
function AssistantSummary() {
  const report = useLoad(async () => {
    const settings = await get(paths.inbox.assistant);
    return settings.enabled ? get(paths.inbox.assistantReport) : null;
  }, []);
  if (!report.data) return null;
  const data = report.data;
  return (
    <section class="card stack" data-assistant-report>
      <h2>{t("Assistant, last 30 days")}</h2>
      <div class="tiles">
        <span class="tile" data-tile="answered"><span class="tile-value">{formatNumber(data.answered)}</span><span class="tile-label">{t("Conversations answered")}</span></span>
        <span class="tile" data-tile="handed_off"><span class="tile-value">{formatNumber(data.handed_off)}</span><span class="tile-label">{t("Handed to the team")}</span></span>
        <span class="tile" data-tile="resolved"><span class="tile-value">{formatNumber(data.resolved)}</span><span class="tile-label">{t("Resolved without the team")}</span></span>
      </div>
    </section>
  );
}

export function Overview() {
  const managing = can("ticketing", "write") && can("users", "read");
  return (
    <div class="page">
      <PageHeader title={t("Overview")} />
      <div class="overview">
        {can("whatsapp", "read") && <InboxTiles />}
        {can("ticketing", "read") && <TicketTiles />}
        {can("campaigns", "read") && <RunningCampaigns />}
        {managing && <SlaSummary />}
        {can("settings", "read") && <AssistantSummary />}
        {can("settings", "read") && <Usage />}
        {canBilling() && <PlanUsage />}
      </div>
    </div>
  );
}
