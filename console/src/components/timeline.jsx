// A customer's timeline: every entry in the reader's language, notes and tasks added in place.
import { useState } from "preact/hooks";
import { get, post, query } from "../api.js";
import { Empty, Loading, toast, useLoad } from "./ui.jsx";
import { events } from "../events.js";
import { formatDateTime, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";
import { can } from "../session.js";

// One line per timeline entry, in the reader's language.
function describe(activity) {
  const d = activity.details || {};
  switch (activity.kind) {
    case "note":
      return t("Note");
    case "call":
      return t("Call");
    case "meeting":
      return t("Meeting");
    case "task":
      return activity.done_at ? t("Task, done") : t("Task");
    case "conversation_started":
      return t("Started a conversation");
    case "ticket_opened":
      return t("Ticket #{number} opened: {title}", d);
    case "ticket_closed":
      return t("Ticket #{number} closed: {title}", d);
    case "ticket_reopened":
      return t("Ticket #{number} reopened: {title}", d);
    case "deal_created":
      return t("Deal created: {title}", d);
    case "deal_stage_changed":
      return t("Deal {title} moved from {from} to {to}", d);
    case "lead_captured":
      return t("Came in as a lead");
    case "customers_merged":
      return t("A duplicate was merged into this customer");
    case "campaign_message":
      return t("Received a campaign message");
    case "campaign_replied":
      return t("Replied to a campaign");
    case "opted_out":
      return t("Opted out of campaigns");
    default:
      return activity.kind;
  }
}

export function Timeline({ customerId, compact }) {
  const entries = useLoad(() => get(query(paths.crm.activity(customerId), { limit: compact ? 15 : 100 })).then((page) => page.items), [customerId]);
  const [text, setText] = useState("");
  const [kind, setKind] = useState("note");
  // What the hub writes on the timeline comes with these events.
  useLive([events.dealUpdated, events.ticketCreated, events.ticketUpdated, events.leadCreated], (event, data) => {
    const about = data.deal?.customer_id || data.ticket?.customer_id || data.customerId;
    if (about === customerId) entries.reload();
  });
  const add = async (event) => {
    event.preventDefault();
    if (!text.trim()) return;
    try {
      await post(paths.crm.activity(customerId), { kind, text });
      setText("");
      entries.reload();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <div class="timeline">
      {can("crm", "read") && !compact && (
        <form class="inline-form" onSubmit={add}>
          <select aria-label={t("Kind")} value={kind} onChange={(event) => setKind(event.currentTarget.value)}>
            <option value="note">{t("Note")}</option>
            <option value="call">{t("Call")}</option>
            <option value="meeting">{t("Meeting")}</option>
            <option value="task">{t("Task")}</option>
          </select>
          <input placeholder={t("What happened?")} value={text} onInput={(event) => setText(event.currentTarget.value)} />
          <button type="submit">{t("Add")}</button>
        </form>
      )}
      <Loading state={entries}>
        {(items) =>
          items.length ? (
            <ol class="timeline-list">
              {items.map((item) => (
                <li key={item.id} data-kind={item.kind}>
                  <span class="timeline-what">{describe(item)}</span>
                  {item.text && <span class="timeline-text" dir="auto">{item.text}</span>}
                  <time class="muted">{formatDateTime(item.created_at)}</time>
                </li>
              ))}
            </ol>
          ) : (
            <Empty>{t("Nothing has happened yet.")}</Empty>
          )
        }
      </Loading>
    </div>
  );
}
