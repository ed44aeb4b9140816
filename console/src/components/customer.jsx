// A customer beside a conversation or on their page: what is known of them, their deals and tickets.
import { get, query } from "../api.js";
import { Empty, Link, Loading, useLoad } from "./ui.jsx";
import { events } from "../events.js";
import { formatMoney, formatNumber, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";
import { can } from "../session.js";
import { languageName, priorityName, ticketStatusName } from "../words.js";

// What is known of a customer: contact, language, score, tags, custom fields, opt-out.
export function CustomerFacts({ person }) {
  return (
    <dl class="facts">
      <dt>{t("Phone")}</dt>
      <dd dir="ltr">{person.phone || "—"}</dd>
      <dt>{t("E-mail")}</dt>
      <dd dir="ltr">{person.email || "—"}</dd>
      <dt>{t("Language")}</dt>
      <dd>{person.language ? languageName(person.language) : "—"}</dd>
      <dt>{t("Lead score")}</dt>
      <dd>{formatNumber(person.score)}</dd>
      <dt>{t("Tags")}</dt>
      <dd>{person.tags.length ? person.tags.map((tag) => <span class="chip">{tag}</span>) : "—"}</dd>
      {Object.entries(person.attributes || {}).map(([key, value]) => (
        <>
          <dt>{key}</dt>
          <dd>{String(value)}</dd>
        </>
      ))}
      <dt>{t("Campaigns")}</dt>
      <dd class={person.opted_out ? "warn-text" : ""}>{person.opted_out ? t("Opted out") : t("Receives campaigns")}</dd>
    </dl>
  );
}

// A customer's deals and tickets, kept current by the hub's events.
export function CustomerWork({ customerId }) {
  const deals = useLoad(
    () =>
      get(query(paths.crm.board, { customer: customerId })).then((columns) =>
        columns.flatMap((column) => column.deals.map((deal) => ({ ...deal, stage: column.stage }))),
      ),
    [customerId],
  );
  const tickets = useLoad(
    () => (can("ticketing", "read") ? get(query(paths.tickets.list, { customer: customerId, limit: 50 })).then((page) => page.items) : Promise.resolve([])),
    [customerId],
  );
  useLive([events.dealUpdated, events.ticketCreated, events.ticketUpdated], (event, data) => {
    if (data.deal?.customer_id === customerId) deals.reload();
    if (data.ticket?.customer_id === customerId) tickets.reload();
  });
  return (
    <>
      <h3>{t("Deals")}</h3>
      <Loading state={deals}>
        {(items) =>
          items.length ? (
            <ul class="mini-list">
              {items.map((deal) => (
                <li key={deal.id}>
                  <span>{deal.title}</span>
                  <span class="muted">{deal.stage.name} · {formatMoney(Number(deal.amount), deal.currency)}</span>
                </li>
              ))}
            </ul>
          ) : (
            <Empty>{t("No deals yet.")}</Empty>
          )
        }
      </Loading>
      {can("ticketing", "read") && (
        <>
          <h3>{t("Tickets")}</h3>
          <Loading state={tickets}>
            {(items) =>
              items.length ? (
                <ul class="mini-list">
                  {items.map((ticket) => (
                    <li key={ticket.id}>
                      <Link href={`/tickets/${ticket.id}`}>#{ticket.number} {ticket.title}</Link>
                      <span class="muted">{ticketStatusName(ticket.status)} · {priorityName(ticket.priority)}</span>
                    </li>
                  ))}
                </ul>
              ) : (
                <Empty>{t("No tickets yet.")}</Empty>
              )
            }
          </Loading>
        </>
      )}
    </>
  );
}
