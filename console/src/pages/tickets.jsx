// Tickets: the list with filters, and a ticket's page with comments, timeline and live SLA clocks.
import { useRef, useState } from "preact/hooks";
import { get, patch, post, query, upload } from "../api.js";
import { SummaryButton } from "../components/conversation/assist.jsx";
import { Empty, Failure, Field, Icon, Link, Loading, Modal, MoreButton, PageHeader, toast, useForm, useLoad, useNow, usePagedLoad, useSettled } from "../components/ui.jsx";
import { events } from "../events.js";
import { formatDateTime, formatDuration, formatNumber, t } from "../i18n.js";
import { useLive } from "../live.js";
import { paths } from "../paths.js";
import { navigate } from "../router.js";
import { can, role, userId } from "../session.js";
import { useTeam } from "../team.js";
import { priorityName, ticketStatusName } from "../words.js";

const STATUSES = ["open", "in_progress", "waiting_on_customer", "resolved", "closed"];
const PRIORITIES = ["low", "normal", "high", "urgent"];

// A target's state now: met, breached, paused, at risk (the hub warned, at 80% of the target's
// business time) or running. The countdown itself runs here, second by second.
function slaState(target, now) {
  if (!target) return null;
  if (target.met_at) return { kind: target.breached_at ? "breached" : "met", seconds: null };
  if (target.breached_at) return { kind: "breached", seconds: (new Date(target.due_at).getTime() - now) / 1000 };
  if (target.left_seconds != null && !target.due_at) return { kind: "paused", seconds: target.left_seconds };
  if (!target.due_at) return null;
  const seconds = (new Date(target.due_at).getTime() - now) / 1000;
  if (seconds <= 0) return { kind: "breached", seconds };
  if (target.warned_at) return { kind: "at-risk", seconds };
  return { kind: "running", seconds };
}

export function SlaClock({ label, target, now }) {
  const state = slaState(target, now);
  if (!state) return null;
  const words = {
    met: t("met"),
    breached: t("breached"),
    paused: t("paused"),
    "at-risk": t("at risk"),
    running: t("on time"),
  };
  const time =
    state.seconds == null
      ? ""
      : state.seconds < 0
        ? t("{time} overdue", { time: formatDuration(-state.seconds) })
        : t("{time} left", { time: formatDuration(state.seconds) });
  return (
    <span class={`sla sla-${state.kind}`} data-sla={state.kind} title={target.due_at ? formatDateTime(target.due_at) : ""}>
      <Icon name={state.kind === "breached" || state.kind === "at-risk" ? "warn" : "clock"} size={14} />
      {label}: {words[state.kind]} {time}
    </span>
  );
}

export function Tickets() {
  const [status, setStatus] = useState("");
  const [priority, setPriority] = useState("");
  const [assignee, setAssignee] = useState(role() === "agent" ? "me" : "");
  const [breached, setBreached] = useState(false);
  const [search, setSearch] = useState("");
  const searching = useSettled(search);
  const [creating, setCreating] = useState(false);
  const { team, names } = useTeam();
  const now = useNow();
  const tickets = usePagedLoad(
    (cursor) => get(query(paths.tickets.list, { status, priority, assignee, breached: breached ? "true" : undefined, q: searching.trim(), limit: 50, cursor })),
    [status, priority, assignee, breached, searching],
  );
  useLive([events.ticketCreated, events.ticketUpdated, events.ticketAssigned, events.slaWarning, events.slaBreached], () => tickets.reload());
  return (
    <div class="page">
      <PageHeader title={t("Tickets")}>
        {can("ticketing", "write") && <button type="button" class="primary" onClick={() => setCreating(true)}><Icon name="plus" size={16} /> {t("New ticket")}</button>}
      </PageHeader>
      <div class="list-filters">
        <select aria-label={t("Status")} value={status} onChange={(event) => setStatus(event.currentTarget.value)}>
          <option value="">{t("Any status")}</option>
          {STATUSES.map((value) => <option value={value}>{ticketStatusName(value)}</option>)}
        </select>
        <select aria-label={t("Priority")} value={priority} onChange={(event) => setPriority(event.currentTarget.value)}>
          <option value="">{t("Any priority")}</option>
          {PRIORITIES.map((value) => <option value={value}>{priorityName(value)}</option>)}
        </select>
        <select aria-label={t("Assignee")} value={assignee} onChange={(event) => setAssignee(event.currentTarget.value)}>
          <option value="">{t("Anyone")}</option>
          <option value="me">{t("Me")}</option>
          <option value="unassigned">{t("Unassigned")}</option>
          {team.map((user) => <option value={user.id}>{user.full_name}</option>)}
        </select>
        <label class="toggle"><input type="checkbox" checked={breached} onChange={(event) => setBreached(event.currentTarget.checked)} /> {t("Breached only")}</label>
        <input type="search" placeholder={t("Search tickets")} value={search} onInput={(event) => setSearch(event.currentTarget.value)} />
      </div>
      <Loading state={tickets}>
        {(items) =>
          items.length ? (
            <table class="table">
              <thead>
                <tr><th>#</th><th>{t("Title")}</th><th>{t("Status")}</th><th>{t("Priority")}</th><th>{t("Assignee")}</th><th>{t("SLA")}</th><th>{t("Updated")}</th></tr>
              </thead>
              <tbody>
                {items.map((ticket) => (
                  <tr key={ticket.id} class="clickable" onClick={() => navigate(`/tickets/${ticket.id}`)}>
                    <td>{formatNumber(ticket.number)}</td>
                    <td><Link href={`/tickets/${ticket.id}`}>{ticket.title}</Link></td>
                    <td>{ticketStatusName(ticket.status)}</td>
                    <td><span class={`priority priority-${ticket.priority}`}>{priorityName(ticket.priority)}</span></td>
                    <td>{ticket.assignee_id ? names[ticket.assignee_id] || (ticket.assignee_id === userId() ? t("You") : "—") : t("Unassigned")}</td>
                    <td>
                      {ticket.first_response || ticket.resolution ? (
                        <div class="sla-cell">
                          <SlaClock label={t("Response")} target={ticket.first_response} now={now} />
                          <SlaClock label={t("Resolution")} target={ticket.resolution} now={now} />
                        </div>
                      ) : (
                        <span class="muted">—</span>
                      )}
                    </td>
                    <td>{formatDateTime(ticket.updated_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>{t("No tickets match.")}</Empty>
          )
        }
      </Loading>
      <MoreButton list={tickets} />
      {creating && <NewTicket team={team} onClose={() => setCreating(false)} />}
    </div>
  );
}

function NewTicket({ team, onClose }) {
  const form = useForm({ title: "", description: "", priority: "normal", kind: "support", assignee_id: "" }, async (values) => {
    const ticket = await post(paths.tickets.list, {
      title: values.title,
      description: values.description || null,
      priority: values.priority,
      kind: values.kind,
      assignee_id: values.assignee_id || null,
    });
    onClose();
    navigate(`/tickets/${ticket.id}`);
  });
  return (
    <Modal title={t("New ticket")} onClose={onClose}>
      <form class="stack" onSubmit={form.onSubmit}>
        <Field label={t("Title")} error={form.errors.title}><input required value={form.values.title} onInput={form.set("title")} /></Field>
        <Field label={t("Description")} error={form.errors.description}><textarea rows={3} value={form.values.description} onInput={form.set("description")} /></Field>
        <div class="row">
          <Field label={t("Priority")} error={form.errors.priority}>
            <select value={form.values.priority} onChange={form.set("priority")}>{PRIORITIES.map((value) => <option value={value}>{priorityName(value)}</option>)}</select>
          </Field>
          <Field label={t("Kind")} error={form.errors.kind}>
            <select value={form.values.kind} onChange={form.set("kind")}>
              <option value="support">{t("Support")}</option>
              <option value="sales">{t("Sales")}</option>
            </select>
          </Field>
        </div>
        {team.length > 0 && (
          <Field label={t("Assignee")} error={form.errors.assignee_id}>
            <select value={form.values.assignee_id} onChange={form.set("assignee_id")}>
              <option value="">{t("Unassigned")}</option>
              {team.filter((user) => user.role !== "member").map((user) => <option value={user.id}>{user.full_name}</option>)}
            </select>
          </Field>
        )}
        <Failure message={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>{t("Create the ticket")}</button>
      </form>
    </Modal>
  );
}

function describeChange(change, names) {
  const d = change.details || {};
  const who = (id) => (id ? names[id] || t("someone") : t("nobody"));
  switch (change.kind) {
    case "created":
      return t("Ticket created");
    case "status":
      return t("Status: {old} → {new}", { old: ticketStatusName(d.old), new: ticketStatusName(d.new) });
    case "priority":
      return t("Priority: {old} → {new}", { old: priorityName(d.old), new: priorityName(d.new) });
    case "assignee":
      return t("Assigned to {name}", { name: who(d.new) });
    case "comment":
      return d.public ? t("Replied to the customer") : t("Commented");
    case "first_response":
      return d.met ? t("First response, in time") : t("First response, late");
    case "sla_warning":
      return d.target === "resolution" ? t("Resolution target at risk") : t("Response target at risk");
    case "sla_breached":
      return d.target === "resolution" ? t("Resolution target breached") : t("Response target breached");
    case "title":
      return t("Title changed");
    case "description":
      return t("Description changed");
    case "tags":
      return t("Tags changed");
    case "customer":
      return t("Customer changed");
    case "kind":
      return t("Kind changed");
    default:
      return change.kind;
  }
}

export function TicketPage({ id }) {
  const ticket = useLoad(() => get(paths.tickets.ticket(id)), [id]);
  const comments = useLoad(() => get(query(paths.tickets.comments(id), { limit: 200 })).then((page) => page.items), [id]);
  const timeline = useLoad(() => get(query(paths.tickets.timeline(id), { limit: 100 })).then((page) => page.items), [id]);
  const { team, names } = useTeam();
  const now = useNow();
  useLive([events.ticketUpdated, events.ticketAssigned, events.commentAdded, events.slaWarning, events.slaBreached], (event, data) => {
    const about = data.ticket?.id || data.ticketId;
    if (about !== id) return;
    if (data.ticket) ticket.update(() => data.ticket);
    else ticket.reload();
    if (event === events.commentAdded) comments.reload();
    timeline.reload();
  });
  const change = async (body) => {
    try {
      ticket.update(() => null);
      const updated = await patch(paths.tickets.ticket(id), body);
      ticket.update(() => updated);
      timeline.reload();
    } catch (error) {
      toast(error.message, "error");
      ticket.reload();
    }
  };
  const assign = async (assigneeId) => {
    try {
      const updated = await post(paths.tickets.assign(id), { assignee_id: assigneeId || null });
      ticket.update(() => updated);
      timeline.reload();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  const writable = can("ticketing", "write");
  return (
    <div class="page">
      <Loading state={ticket}>
        {(item) => (
          <>
            <PageHeader title={`#${formatNumber(item.number)} ${item.title}`}>
              <Link href="/tickets" class="button"><Icon name="back" size={16} /> {t("Tickets")}</Link>
              {item.conversation_id && can("whatsapp", "read") && <Link href={`/inbox/${item.conversation_id}`} class="button">{t("Open the chat")}</Link>}
            </PageHeader>
            <div class="columns">
              <section class="card grow stack">
                {item.description && <p class="description" dir="auto">{item.description}</p>}
                {item.context?.length > 0 && (
                  <details>
                    <summary>{t("Messages from the chat")}</summary>
                    <ul class="mini-list">{item.context.map((line) => <li dir="auto">{line.text}</li>)}</ul>
                  </details>
                )}
                <SummaryButton path={paths.tickets.summarize(id)} keep={async (text) => { await post(paths.tickets.comments(id), { text }); comments.reload(); }} keepLabel={t("Keep as a comment for the team")} />
                <h2>{t("Comments")}</h2>
                <Loading state={comments}>
                  {(items) =>
                    items.length ? (
                      <ol class="comments">
                        {items.map((comment) => (
                          <li key={comment.id} class={comment.public ? "public" : "internal"}>
                            <header>
                              <strong>{names[comment.author_id] || (comment.author_id === userId() ? t("You") : t("Team"))}</strong>
                              <span class="muted">{comment.public ? t("Reply to the customer") : t("Internal")}</span>
                              <time class="muted">{formatDateTime(comment.created_at)}</time>
                            </header>
                            {comment.text && <p dir="auto">{comment.text}</p>}
                            {comment.attachments.map((media) => <a href={media.url} target="_blank" rel="noopener">{media.filename || t("Attachment")}</a>)}
                          </li>
                        ))}
                      </ol>
                    ) : (
                      <Empty>{t("No comments yet.")}</Empty>
                    )
                  }
                </Loading>
                {writable && <CommentBox ticketId={id} hasChat={!!item.conversation_id} onAdded={() => comments.reload()} />}
              </section>
              <aside class="card side stack">
                <div class="sla-box">
                  <SlaClock label={t("Response")} target={item.first_response} now={now} />
                  <SlaClock label={t("Resolution")} target={item.resolution} now={now} />
                </div>
                <Field label={t("Status")}>
                  <select disabled={!writable} data-control="status" value={item.status} onChange={(event) => change({ status: event.currentTarget.value })}>
                    {STATUSES.map((value) => <option value={value}>{ticketStatusName(value)}</option>)}
                  </select>
                </Field>
                <Field label={t("Priority")}>
                  <select disabled={!writable} value={item.priority} onChange={(event) => change({ priority: event.currentTarget.value })}>
                    {PRIORITIES.map((value) => <option value={value}>{priorityName(value)}</option>)}
                  </select>
                </Field>
                <Field label={t("Assignee")}>
                  {team.length ? (
                    <select disabled={!writable} data-control="assignee" value={item.assignee_id || ""} onChange={(event) => assign(event.currentTarget.value)}>
                      <option value="">{t("Unassigned")}</option>
                      {team.filter((user) => user.role !== "member").map((user) => <option value={user.id}>{user.full_name}</option>)}
                    </select>
                  ) : (
                    <span>{item.assignee_id === userId() ? t("You") : item.assignee_id ? t("Assigned") : t("Unassigned")}</span>
                  )}
                </Field>
                {item.customer_id && can("crm", "read") && <Link href={`/customers/${item.customer_id}`}>{t("The customer")}</Link>}
                <h3>{t("Timeline")}</h3>
                <Loading state={timeline}>
                  {(items) => (
                    <ol class="timeline-list">
                      {items.map((entry) => (
                        <li key={entry.id} data-kind={entry.kind}>
                          <span class="timeline-what">{describeChange(entry, names)}</span>
                          <span class="muted small">{entry.actor_id ? names[entry.actor_id] || "" : t("The hub")}</span>
                          <time class="muted">{formatDateTime(entry.created_at)}</time>
                        </li>
                      ))}
                    </ol>
                  )}
                </Loading>
              </aside>
            </div>
          </>
        )}
      </Loading>
    </div>
  );
}

function CommentBox({ ticketId, hasChat, onAdded }) {
  const [text, setText] = useState("");
  const [isPublic, setPublic] = useState(false);
  const [files, setFiles] = useState([]);
  const [failure, setFailure] = useState(null);
  const picker = useRef(null);
  const submit = async (event) => {
    event.preventDefault();
    if (!text.trim() && !files.length) return;
    try {
      const attachments = [];
      for (const file of files) attachments.push((await upload(file)).id);
      await post(paths.tickets.comments(ticketId), { text: text.trim() || null, public: isPublic, attachments });
      setText("");
      setFiles([]);
      setFailure(null);
      onAdded();
    } catch (error) {
      setFailure(Object.values(error.fields || {})[0] || error.message);
    }
  };
  return (
    <form class="stack" onSubmit={submit}>
      <textarea rows={3} dir="auto" placeholder={isPublic ? t("Write a reply to the customer") : t("Write an internal comment")} value={text} onInput={(event) => setText(event.currentTarget.value)} />
      <div class="actions-row">
        {hasChat && <label class="toggle"><input type="checkbox" checked={isPublic} onChange={(event) => setPublic(event.currentTarget.checked)} /> {t("Send to the customer")}</label>}
        <button type="button" class="icon-button" onClick={() => picker.current.click()} aria-label={t("Attach files")} title={t("Attach files")}>
          <Icon name="attach" />
        </button>
        <input ref={picker} type="file" multiple hidden onChange={(event) => setFiles([...files, ...event.currentTarget.files])} />
        {files.map((file) => <span class="chip">{file.name}</span>)}
        <button type="submit" class="primary">{t("Add comment")}</button>
      </div>
      <Failure message={failure} />
    </form>
  );
}
