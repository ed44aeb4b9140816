// The open conversation: its messages, the reply box and its tools, and the customer beside it.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { get, patch, post, query, remove } from "../../api.js";
import { SummaryButton } from "./assist.jsx";
import { Composer } from "./composer.jsx";
import { ForwardDialog, TicketDialog } from "./dialogs.jsx";
import { Message } from "./message.jsx";
import { CustomerFacts, CustomerWork } from "../customer.jsx";
import { Timeline } from "../timeline.jsx";
import { Avatar, Icon, Link, Loading, toast, useLoad } from "../ui.jsx";
import { clientEvents, events } from "../../events.js";
import { formatDateTime, t } from "../../i18n.js";
import { emit, useLive } from "../../live.js";
import { paths } from "../../paths.js";
import { can, userId } from "../../session.js";
import { conversationStatusName } from "../../words.js";

export const STATUSES = ["open", "pending", "snoozed", "resolved"];

export function Conversation({ id, team, names }) {
  const conversation = useLoad(() => get(paths.inbox.conversation(id)), [id]);
  const [messages, setMessages] = useState(null);
  const [older, setOlder] = useState(null);
  const [replyTo, setReplyTo] = useState(null);
  const [editing, setEditing] = useState(null);
  const [forwarding, setForwarding] = useState(null);
  const [ticketing, setTicketing] = useState(null);
  const [suggestion, setSuggestion] = useState(null);
  const bottom = useRef(null);
  const composer = useRef(null);

  const loadMessages = async () => {
    const page = await get(query(paths.inbox.messages(id), { limit: 50 }));
    setMessages(page.items.slice().reverse());
    setOlder(page.next_cursor);
    emit(clientEvents.markAsRead, id);
  };
  useEffect(() => {
    loadMessages().catch((error) => toast(error.message, "error"));
  }, [id]);
  useLive([events.resync], () => loadMessages());
  useEffect(() => {
    bottom.current?.scrollIntoView({ block: "end" });
  }, [messages?.length]);

  // The hub's keyword rules think a message needs a ticket: offer it, filled in.
  useLive([events.ticketSuggested], (event, data) => {
    if (data.chatId === id) setSuggestion(data);
  });

  useLive([events.newMessage, events.messageSent, events.messageUpdated, events.messageDeleted, events.conversationUpdated], (event, data) => {
    if (data.chatId !== id) return;
    if (event === events.conversationUpdated) {
      conversation.update(() => data.conversation);
      return;
    }
    setMessages((old) => {
      if (!old) return old;
      if (event === events.messageDeleted) {
        return old.map((item) => (item.id === data.messageId ? { ...item, deleted_at: new Date().toISOString(), text: null, attachments: [] } : item));
      }
      const exists = old.some((item) => item.id === data.message.id);
      if (exists) return old.map((item) => (item.id === data.message.id ? data.message : item));
      return event === events.messageUpdated ? old : [...old, data.message];
    });
    if (event === events.newMessage && data.conversation) conversation.update(() => data.conversation);
  });

  const loadOlder = async () => {
    const page = await get(query(paths.inbox.messages(id), { limit: 50, cursor: older }));
    setMessages((old) => [...page.items.slice().reverse(), ...old]);
    setOlder(page.next_cursor);
  };

  const changeStatus = async (status, snoozed_until) => {
    try {
      const body = { status };
      if (snoozed_until) body.snoozed_until = snoozed_until;
      const updated = await patch(paths.inbox.conversation(id), body);
      conversation.update(() => updated);
    } catch (error) {
      toast(error.message, "error");
    }
  };
  const assign = async (assigneeId) => {
    try {
      const updated = await post(paths.inbox.assign(id), { assignee_id: assigneeId || null });
      conversation.update(() => updated);
    } catch (error) {
      toast(error.message, "error");
    }
  };
  const deleteMessage = async (message) => {
    if (!confirm(t("Delete this message for everyone?"))) return;
    try {
      await remove(paths.inbox.message(id, message.id));
    } catch (error) {
      toast(error.message, "error");
    }
  };

  useEffect(() => {
    const keys = (event) => {
      const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
      if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
      if (event.key === "r") {
        event.preventDefault();
        composer.current?.focus();
      } else if (event.key === "e" && can("whatsapp", "write")) {
        changeStatus("resolved");
      }
    };
    window.addEventListener("keydown", keys);
    return () => window.removeEventListener("keydown", keys);
  });

  const byId = useMemo(() => Object.fromEntries((messages || []).map((item) => [item.id, item])), [messages]);
  return (
    <Loading state={conversation}>
      {(chat) => (
        <>
          <section class="conversation" aria-label={chat.customer.name}>
            <header class="conversation-header">
              <Link href="/inbox" class="icon-button only-narrow" aria-label={t("Back")}>
                <Icon name="back" />
              </Link>
              <Avatar name={chat.customer.name} />
              <div class="who">
                <strong>{chat.customer.name}</strong>
                <span class="muted" dir="ltr">{chat.customer.phone}</span>
              </div>
              {can("whatsapp", "write") && (
                <div class="conversation-controls">
                  {team.length > 0 ? (
                    <select aria-label={t("Assignee")} data-control="assignee" value={chat.assignee_id || ""} onChange={(event) => assign(event.currentTarget.value)}>
                      <option value="">{t("Unassigned")}</option>
                      {team
                        .filter((user) => user.is_active && user.role !== "member")
                        .map((user) => (
                          <option value={user.id}>{user.full_name}</option>
                        ))}
                    </select>
                  ) : (
                    !chat.assignee_id && (
                      <button type="button" onClick={() => assign(userId())}>
                        {t("Assign to me")}
                      </button>
                    )
                  )}
                  <select aria-label={t("Status")} data-control="status" value={chat.status} onChange={(event) => changeStatus(event.currentTarget.value)}>
                    {STATUSES.filter((value) => value !== "snoozed" || chat.status === "snoozed").map((value) => (
                      <option value={value}>{conversationStatusName(value)}</option>
                    ))}
                  </select>
                  <SnoozeMenu onSnooze={(until) => changeStatus("snoozed", until)} />
                  {chat.status !== "resolved" && (
                    <button type="button" class="primary" onClick={() => changeStatus("resolved")}>
                      {t("Resolve")}
                    </button>
                  )}
                </div>
              )}
            </header>
            <Labels chat={chat} onChange={(updated) => conversation.update(() => updated)} />
            <SummaryButton path={paths.inbox.summarize(id)} keep={(text) => post(paths.inbox.messages(id), { text, private: true })} />
            {suggestion && can("ticketing", "write") && (
              <div class="notice slim suggestion" role="status" data-suggestion>
                <span>{t("This message may need a ticket ({keyword}).", { keyword: suggestion.keyword })}</span>
                <button type="button" class="small primary" onClick={() => { setTicketing(suggestion.draft); setSuggestion(null); }}>
                  {t("Create ticket")}
                </button>
                <button type="button" class="small" onClick={() => setSuggestion(null)}>{t("Dismiss")}</button>
              </div>
            )}
            {chat.status === "snoozed" && chat.snoozed_until && (
              <p class="notice slim">{t("Snoozed until {time}", { time: formatDateTime(chat.snoozed_until) })}</p>
            )}
            <div class="messages" role="log" aria-live="polite">
              {older && (
                <button type="button" class="link-button load-older" onClick={loadOlder}>
                  {t("Show older messages")}
                </button>
              )}
              {messages === null ? (
                <p class="muted loading">{t("Loading…")}</p>
              ) : (
                messages.map((message) => (
                  <Message
                    key={message.id}
                    conversationId={id}
                    message={message}
                    quoted={message.reply_to_id && byId[message.reply_to_id]}
                    names={names}
                    onReply={(item) => {
                      setEditing(null);
                      setReplyTo(item);
                      composer.current?.focus();
                    }}
                    onEdit={(item) => {
                      setReplyTo(null);
                      setEditing(item);
                      composer.current?.focus();
                    }}
                    onDelete={deleteMessage}
                    onForward={setForwarding}
                  />
                ))
              )}
              <div ref={bottom} />
            </div>
            {can("whatsapp", "write") && (
              <Composer
                key={editing ? `edit-${editing.id}` : "reply"}
                id={id}
                inputRef={composer}
                replyTo={replyTo}
                editing={editing}
                onDone={() => {
                  setReplyTo(null);
                  setEditing(null);
                }}
              />
            )}
          </section>
          {can("crm", "read") && (
            <CustomerPanel customerId={chat.customer.id} onCreateTicket={can("ticketing", "write") ? () => setTicketing({}) : null} />
          )}
          {forwarding && <ForwardDialog message={forwarding} from={id} onClose={() => setForwarding(null)} />}
          {ticketing && <TicketDialog chat={chat} draft={ticketing} onClose={() => setTicketing(null)} />}
        </>
      )}
    </Loading>
  );
}

function SnoozeMenu({ onSnooze }) {
  const [open, setOpen] = useState(false);
  const at = (hours) => new Date(Date.now() + hours * 3600 * 1000).toISOString();
  const tomorrowMorning = () => {
    const moment = new Date();
    moment.setDate(moment.getDate() + 1);
    moment.setHours(9, 0, 0, 0);
    return moment.toISOString();
  };
  const pick = (until) => {
    setOpen(false);
    onSnooze(until);
  };
  return (
    <div class="menu-wrap">
      <button type="button" onClick={() => setOpen(!open)} aria-expanded={open}>
        <Icon name="clock" size={16} /> {t("Snooze")}
      </button>
      {open && (
        <div class="menu" role="menu">
          <button type="button" role="menuitem" onClick={() => pick(at(1))}>{t("For an hour")}</button>
          <button type="button" role="menuitem" onClick={() => pick(at(4))}>{t("For four hours")}</button>
          <button type="button" role="menuitem" onClick={() => pick(tomorrowMorning())}>{t("Until tomorrow morning")}</button>
          <button type="button" role="menuitem" onClick={() => pick(at(24 * 7))}>{t("For a week")}</button>
        </div>
      )}
    </div>
  );
}

function CustomerPanel({ customerId, onCreateTicket }) {
  const customer = useLoad(() => get(paths.crm.customer(customerId)), [customerId]);
  return (
    <aside class="customer-panel" aria-label={t("Customer")}>
      <Loading state={customer}>
        {(person) => (
          <>
            <header>
              <Avatar name={person.name} />
              <div>
                <Link href={`/customers/${person.id}`}><strong>{person.name}</strong></Link>
                <span class="muted" dir="ltr">{person.phone}</span>
              </div>
            </header>
            <CustomerFacts person={person} />
          </>
        )}
      </Loading>
      {onCreateTicket && (
        <button type="button" class="wide" onClick={onCreateTicket} data-action="create-ticket">
          <Icon name="tickets" size={16} /> {t("Create ticket from this chat")}
        </button>
      )}
      <CustomerWork customerId={customerId} />
      <h3>{t("Timeline")}</h3>
      <Timeline customerId={customerId} compact />
    </aside>
  );
}

// The conversation's labels: shown as chips, added from the organization's list, removed by a click.
function Labels({ chat, onChange }) {
  const [adding, setAdding] = useState(false);
  const known = useLoad(() => (adding ? get(paths.inbox.labels) : Promise.resolve([])), [adding]);
  const save = async (labels) => {
    try {
      onChange(await post(paths.inbox.labelsOf(chat.id), { labels }));
    } catch (error) {
      toast(error.message, "error");
    }
  };
  const writable = can("whatsapp", "write");
  if (!chat.labels.length && !writable) return null;
  return (
    <div class="labels" data-labels>
      {chat.labels.map((label) => (
        <span class="chip" key={label}>
          {label}
          {writable && (
            <button type="button" class="icon-button" aria-label={t("Remove")} onClick={() => save(chat.labels.filter((item) => item !== label))}>
              <Icon name="close" size={12} />
            </button>
          )}
        </span>
      ))}
      {writable &&
        (adding ? (
          <Loading state={known}>
            {(labels) => {
              const free = labels.filter((label) => !chat.labels.includes(label.name));
              return free.length ? (
                <select
                  aria-label={t("Label")}
                  data-control="label"
                  value=""
                  onChange={(event) => {
                    setAdding(false);
                    save([...chat.labels, event.currentTarget.value]);
                  }}
                >
                  <option value="">{t("Choose a label")}</option>
                  {free.map((label) => (
                    <option value={label.name}>{label.name}</option>
                  ))}
                </select>
              ) : (
                <span class="muted small">{t("No more labels: managers make them in Settings.")}</span>
              );
            }}
          </Loading>
        ) : (
          <button type="button" class="small link-button" data-action="add-label" onClick={() => setAdding(true)}>
            <Icon name="plus" size={12} /> {t("Label")}
          </button>
        ))}
    </div>
  );
}
