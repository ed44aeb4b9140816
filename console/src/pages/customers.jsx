// Customers: the list with search and segments, a customer's page, and their timeline.
import { useState } from "preact/hooks";
import { get, patch, post, query } from "../api.js";
import { formatDateTime, formatMoney, formatNumber, t } from "../i18n.js";
import { useLive } from "../live.js";
import { navigate } from "../router.js";
import { can } from "../session.js";
import { Empty, Failure, Field, Icon, Link, Loading, Modal, MoreButton, PageHeader, Tabs, toast, useForm, useLoad, usePagedLoad, useSettled } from "../ui.jsx";
import { languageName, priorityName, ticketStatusName } from "../words.js";

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
  const entries = useLoad(() => get(query(`/api/crm/customers/${customerId}/activity`, { limit: compact ? 15 : 100 })).then((page) => page.items), [customerId]);
  const [text, setText] = useState("");
  const [kind, setKind] = useState("note");
  // What the hub writes on the timeline comes with these events.
  useLive(["dealUpdated", "ticketCreated", "ticketUpdated", "leadCreated"], (event, data) => {
    const about = data.deal?.customer_id || data.ticket?.customer_id || data.customerId;
    if (about === customerId) entries.reload();
  });
  const add = async (event) => {
    event.preventDefault();
    if (!text.trim()) return;
    try {
      await post(`/api/crm/customers/${customerId}/activity`, { kind, text });
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

export function Customers() {
  const [tab, setTab] = useState("customers");
  return (
    <div class="page">
      <PageHeader title={t("Customers")}>
        {can("crm", "write") && tab === "customers" && <NewCustomerButton />}
      </PageHeader>
      <Tabs items={[["customers", t("All customers")], ["segments", t("Segments")]]} value={tab} onChange={setTab} />
      {tab === "customers" ? <CustomerList /> : <Segments />}
    </div>
  );
}

function CustomerList() {
  const [search, setSearch] = useState("");
  const searching = useSettled(search);
  const list = usePagedLoad((cursor) => get(query("/api/crm/customers", { q: searching.trim(), limit: 50, cursor })), [searching]);
  useLive(["leadCreated"], () => list.reload());
  return (
    <>
      <div class="list-filters">
        <input type="search" placeholder={t("Search name, phone or e-mail")} value={search} onInput={(event) => setSearch(event.currentTarget.value)} />
      </div>
      <Loading state={list}>
        {(items) =>
          items.length ? (
            <>
              <table class="table">
                <thead>
                  <tr>
                    <th>{t("Name")}</th>
                    <th>{t("Phone")}</th>
                    <th>{t("E-mail")}</th>
                    <th>{t("Tags")}</th>
                    <th>{t("Lead score")}</th>
                    <th>{t("Added")}</th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((customer) => (
                    <tr key={customer.id} onClick={() => navigate(`/customers/${customer.id}`)} class="clickable">
                      <td><Link href={`/customers/${customer.id}`}>{customer.name}</Link></td>
                      <td dir="ltr" class="start">{customer.phone}</td>
                      <td dir="ltr" class="start">{customer.email}</td>
                      <td>{customer.tags.map((tag) => <span class="chip">{tag}</span>)}</td>
                      <td>{formatNumber(customer.score)}</td>
                      <td>{formatDateTime(customer.created_at, { dateStyle: "medium" })}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <MoreButton list={list} />
            </>
          ) : (
            <Empty>{t("No customers found.")}</Empty>
          )
        }
      </Loading>
    </>
  );
}

function NewCustomerButton() {
  const [open, setOpen] = useState(false);
  const form = useForm({ name: "", phone: "", email: "" }, async (values) => {
    const body = { name: values.name, phone: values.phone || null, email: values.email || null };
    const customer = await post("/api/crm/customers", body);
    setOpen(false);
    navigate(`/customers/${customer.id}`);
  });
  return (
    <>
      <button type="button" class="primary" onClick={() => setOpen(true)}><Icon name="plus" size={16} /> {t("New customer")}</button>
      {open && (
        <Modal title={t("New customer")} onClose={() => setOpen(false)}>
          <form class="stack" onSubmit={form.onSubmit}>
            <Field label={t("Name")} error={form.errors.name}><input required value={form.values.name} onInput={form.set("name")} /></Field>
            <Field label={t("Phone")} error={form.errors.phone}><input dir="ltr" value={form.values.phone} onInput={form.set("phone")} /></Field>
            <Field label={t("E-mail")} error={form.errors.email}><input type="email" dir="ltr" value={form.values.email} onInput={form.set("email")} /></Field>
            <Failure message={form.failure} />
            <button type="submit" class="primary" disabled={form.busy}>{t("Save")}</button>
          </form>
        </Modal>
      )}
    </>
  );
}

function Segments() {
  const segments = useLoad(() => get("/api/crm/segments"), []);
  const [open, setOpen] = useState(false);
  const [chosen, setChosen] = useState(null);
  return (
    <>
      {can("crm", "write") && (
        <div class="actions-row">
          <button type="button" onClick={() => setOpen(true)}><Icon name="plus" size={16} /> {t("New segment")}</button>
        </div>
      )}
      <Loading state={segments}>
        {(items) => {
          return items.length ? (
            <table class="table">
              <thead>
                <tr><th>{t("Segment")}</th><th>{t("Matching")}</th><th>{t("Can receive campaigns")}</th><th>{t("Opted out")}</th></tr>
              </thead>
              <tbody>
                {items.map((segment) => (
                  <tr key={segment.id} class="clickable" onClick={() => setChosen(segment)}>
                    <td>{segment.name}</td>
                    <td>{formatNumber(segment.counts.matching)}</td>
                    <td>{formatNumber(segment.counts.sendable)}</td>
                    <td>{formatNumber(segment.counts.opted_out)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>{t("No segments yet.")}</Empty>
          );
        }}
      </Loading>
      {open && <SegmentDialog onClose={() => { setOpen(false); segments.reload(); }} />}
      {chosen && <SegmentMembers segment={chosen} onClose={() => setChosen(null)} />}
    </>
  );
}

function SegmentDialog({ onClose }) {
  const [counts, setCounts] = useState(null);
  const filtersOf = (values) => {
    const filters = {};
    const tags = values.tags.split(",").map((tag) => tag.trim()).filter(Boolean);
    if (tags.length) filters.tags = tags;
    if (values.language) filters.languages = [values.language];
    if (values.score_min !== "") filters.score_min = Number(values.score_min);
    return filters;
  };
  const form = useForm({ name: "", tags: "", language: "", score_min: "" }, async (values) => {
    await post("/api/crm/segments", { name: values.name, filters: filtersOf(values) });
    onClose();
  });
  const preview = async () => {
    try {
      setCounts(await post("/api/crm/segments/preview", filtersOf(form.values)));
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <Modal title={t("New segment")} onClose={onClose}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("Name")} error={form.errors.name}><input required value={form.values.name} onInput={form.set("name")} /></Field>
        <Field label={t("Tags (any of them)")} hint={t("Separate tags with commas.")}><input value={form.values.tags} onInput={form.set("tags")} /></Field>
        <Field label={t("Language")}>
          <select value={form.values.language} onChange={form.set("language")}>
            <option value="">{t("Any language")}</option>
            <option value="ar">{languageName("ar")}</option>
            <option value="en">{languageName("en")}</option>
          </select>
        </Field>
        <Field label={t("Lowest lead score")}><input type="number" min="0" max="100" value={form.values.score_min} onInput={form.set("score_min")} /></Field>
        {counts && (
          <p class="notice">{t("{matching} customers match; {sendable} can receive campaigns.", { matching: formatNumber(counts.matching), sendable: formatNumber(counts.sendable) })}</p>
        )}
        <Failure message={form.failure} />
        <div class="actions-row">
          <button type="button" onClick={preview}>{t("Count matching customers")}</button>
          <button type="submit" class="primary" disabled={form.busy}>{t("Save the segment")}</button>
        </div>
      </form>
    </Modal>
  );
}

function SegmentMembers({ segment, onClose }) {
  const members = useLoad(() => get(query(`/api/crm/segments/${segment.id}/customers`, { limit: 100 })), [segment.id]);
  return (
    <Modal title={segment.name} onClose={onClose} wide>
      <Loading state={members}>
        {(page) => (
          <ul class="pick-list">
            {page.items.map((customer) => (
              <li key={customer.id}><Link href={`/customers/${customer.id}`}>{customer.name}</Link> <span class="muted" dir="ltr">{customer.phone}</span></li>
            ))}
          </ul>
        )}
      </Loading>
    </Modal>
  );
}

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
      get(query("/api/crm/board", { customer: customerId })).then((columns) =>
        columns.flatMap((column) => column.deals.map((deal) => ({ ...deal, stage: column.stage }))),
      ),
    [customerId],
  );
  const tickets = useLoad(
    () => (can("ticketing", "read") ? get(query("/api/tickets", { customer: customerId, limit: 50 })).then((page) => page.items) : Promise.resolve([])),
    [customerId],
  );
  useLive(["dealUpdated", "ticketCreated", "ticketUpdated"], (event, data) => {
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

export function CustomerPage({ id }) {
  const customer = useLoad(() => get(`/api/crm/customers/${id}`), [id]);
  const [editing, setEditing] = useState(false);
  return (
    <div class="page">
      <Loading state={customer}>
        {(person) => (
          <>
            <PageHeader title={person.name}>
              <Link href="/customers" class="button"><Icon name="back" size={16} /> {t("Customers")}</Link>
              {can("crm", "write") && <button type="button" onClick={() => setEditing(true)}><Icon name="edit" size={16} /> {t("Edit")}</button>}
            </PageHeader>
            <div class="columns">
              <section class="card">
                <CustomerFacts person={person} />
                <CustomerWork customerId={person.id} />
              </section>
              <section class="card grow">
                <h2>{t("Timeline")}</h2>
                <Timeline customerId={person.id} />
              </section>
            </div>
            {editing && <EditCustomer person={person} onClose={(updated) => { setEditing(false); if (updated) customer.update(() => updated); }} />}
          </>
        )}
      </Loading>
    </div>
  );
}

function EditCustomer({ person, onClose }) {
  const form = useForm(
    { name: person.name, phone: person.phone || "", email: person.email || "", language: person.language || "", tags: person.tags.join(", ") },
    async (values) => {
      const updated = await patch(`/api/crm/customers/${person.id}`, {
        name: values.name,
        phone: values.phone || null,
        email: values.email || null,
        language: values.language || null,
        tags: values.tags.split(",").map((tag) => tag.trim()).filter(Boolean),
      });
      onClose(updated);
    },
  );
  return (
    <Modal title={t("Edit customer")} onClose={() => onClose(null)}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("Name")} error={form.errors.name}><input required value={form.values.name} onInput={form.set("name")} /></Field>
        <Field label={t("Phone")} error={form.errors.phone}><input dir="ltr" value={form.values.phone} onInput={form.set("phone")} /></Field>
        <Field label={t("E-mail")} error={form.errors.email}><input dir="ltr" type="email" value={form.values.email} onInput={form.set("email")} /></Field>
        <Field label={t("Language")} error={form.errors.language}>
          <select value={form.values.language} onChange={form.set("language")}>
            <option value="">{t("The organization's language")}</option>
            <option value="ar">{languageName("ar")}</option>
            <option value="en">{languageName("en")}</option>
          </select>
        </Field>
        <Field label={t("Tags")} error={form.errors.tags} hint={t("Separate tags with commas.")}><input value={form.values.tags} onInput={form.set("tags")} /></Field>
        <Failure message={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>{t("Save")}</button>
      </form>
    </Modal>
  );
}
