// The open conversation: its messages, the reply box and its tools, and the customer beside it.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { get, patch, post, put, query, remove, upload } from "../api.js";
import { formatDateTime, formatTime, t } from "../i18n.js";
import { emit, useLive } from "../live.js";
import { can, userId } from "../session.js";
import { Avatar, Field, Icon, Link, Loading, Modal, toast, useLoad, useSettled } from "../ui.jsx";
import { conversationStatusName, messageStatusName, priorityName } from "../words.js";
import { CustomerFacts, CustomerWork, Timeline } from "./customers.jsx";

export const STATUSES = ["open", "pending", "snoozed", "resolved"];

function Ticks({ message }) {
  if (message.direction !== "outbound" || message.private) return null;
  const icon = {
    queued: "clock",
    sent: "check",
    delivered: "checks",
    read: "checks",
    failed: "warn",
    unknown: "warn",
  }[message.status];
  return (
    <span class={`ticks status-${message.status}`} title={messageStatusName(message.status)} data-status={message.status}>
      {icon && <Icon name={icon} size={14} label={messageStatusName(message.status)} />}
    </span>
  );
}

function Attachment({ media }) {
  if (media.kind === "image") {
    return (
      <a href={media.url} target="_blank" rel="noopener" class="attachment image">
        <img src={media.url} alt={media.filename || t("Image")} loading="lazy" />
      </a>
    );
  }
  if (media.kind === "audio") return <audio controls src={media.url} class="attachment" />;
  if (media.kind === "video") return <video controls src={media.url} class="attachment" />;
  return (
    <a href={media.url} download={media.filename || ""} class="attachment file">
      <Icon name="attach" size={14} /> {media.filename || t("Download the file")}
    </a>
  );
}

function Message({ message, quoted, names, onReply, onEdit, onDelete, onForward }) {
  const mine = message.sender_user_id === userId();
  const deleted = !!message.deleted_at;
  const author =
    message.direction === "inbound" ? null : message.sender_user_id ? names[message.sender_user_id] || (mine ? t("You") : "") : t("Automatic");
  return (
    <div
      class={`message ${message.direction}${message.private ? " private" : ""}${deleted ? " deleted" : ""}`}
      data-message={message.id}
    >
      <div class="bubble">
        {message.private && <span class="private-mark"><Icon name="note" size={14} /> {t("Private note")}</span>}
        {quoted && (
          <blockquote class="quoted">{quoted.deleted_at ? t("This message was deleted.") : quoted.text || t("Attachment")}</blockquote>
        )}
        {deleted ? (
          <em class="muted">{t("This message was deleted.")}</em>
        ) : (
          <>
            {message.attachments.map((media) => (
              <Attachment key={media.id} media={media} />
            ))}
            {message.text && <p class="text" dir="auto">{message.text}</p>}
          </>
        )}
        <footer>
          {author && <span class="author">{author}</span>}
          <time title={formatDateTime(message.created_at)}>{formatTime(message.created_at)}</time>
          {message.edited_at && !deleted && <span class="edited">{t("Edited")}</span>}
          <Ticks message={message} />
        </footer>
        {(message.status === "failed" || message.status === "unknown") && message.failure_reason && <p class="failure small">{message.failure_reason}</p>}
      </div>
      {!deleted && can("whatsapp", "write") && (
        <div class="message-actions">
          <button type="button" class="icon-button" onClick={() => onReply(message)} aria-label={t("Reply")} title={t("Reply")}>
            <Icon name="reply" size={16} />
          </button>
          <button type="button" class="icon-button" onClick={() => onForward(message)} aria-label={t("Forward")} title={t("Forward")}>
            <Icon name="share" size={16} />
          </button>
          {mine && message.direction === "outbound" && (
            <>
              {message.text && (
                <button type="button" class="icon-button" onClick={() => onEdit(message)} aria-label={t("Edit")} title={t("Edit")}>
                  <Icon name="edit" size={16} />
                </button>
              )}
              <button type="button" class="icon-button" onClick={() => onDelete(message)} aria-label={t("Delete")} title={t("Delete")}>
                <Icon name="trash" size={16} />
              </button>
            </>
          )}
        </div>
      )}
    </div>
  );
}

export function Conversation({ id, team, names }) {
  const conversation = useLoad(() => get(`/api/inbox/conversations/${id}`), [id]);
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
    const page = await get(query(`/api/inbox/conversations/${id}/messages`, { limit: 50 }));
    setMessages(page.items.slice().reverse());
    setOlder(page.next_cursor);
    emit("markAsRead", id);
  };
  useEffect(() => {
    loadMessages().catch((error) => toast(error.message, "error"));
  }, [id]);
  useLive(["resync"], () => loadMessages());
  useEffect(() => {
    bottom.current?.scrollIntoView({ block: "end" });
  }, [messages?.length]);

  // The hub's keyword rules think a message needs a ticket: offer it, filled in.
  useLive(["ticketSuggested"], (event, data) => {
    if (data.chatId === id) setSuggestion(data);
  });

  useLive(["newMessage", "messageSent", "messageUpdated", "messageDeleted", "conversationUpdated"], (event, data) => {
    if (data.chatId !== id) return;
    if (event === "conversationUpdated") {
      conversation.update(() => data.conversation);
      return;
    }
    setMessages((old) => {
      if (!old) return old;
      if (event === "messageDeleted") {
        return old.map((item) => (item.id === data.messageId ? { ...item, deleted_at: new Date().toISOString(), text: null, attachments: [] } : item));
      }
      const exists = old.some((item) => item.id === data.message.id);
      if (exists) return old.map((item) => (item.id === data.message.id ? data.message : item));
      return event === "messageUpdated" ? old : [...old, data.message];
    });
    if (event === "newMessage" && data.conversation) conversation.update(() => data.conversation);
  });

  const loadOlder = async () => {
    const page = await get(query(`/api/inbox/conversations/${id}/messages`, { limit: 50, cursor: older }));
    setMessages((old) => [...page.items.slice().reverse(), ...old]);
    setOlder(page.next_cursor);
  };

  const changeStatus = async (status, snoozed_until) => {
    try {
      const body = { status };
      if (snoozed_until) body.snoozed_until = snoozed_until;
      const updated = await patch(`/api/inbox/conversations/${id}`, body);
      conversation.update(() => updated);
    } catch (error) {
      toast(error.message, "error");
    }
  };
  const assign = async (assigneeId) => {
    try {
      const updated = await post(`/api/inbox/conversations/${id}/assign`, { assignee_id: assigneeId || null });
      conversation.update(() => updated);
    } catch (error) {
      toast(error.message, "error");
    }
  };
  const deleteMessage = async (message) => {
    if (!confirm(t("Delete this message for everyone?"))) return;
    try {
      await remove(`/api/inbox/conversations/${id}/messages/${message.id}`);
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

function Composer({ id, inputRef, replyTo, editing, onDone }) {
  // Editing remounts the box (its key), so it starts with the message's text at once.
  const [text, setText] = useState(editing?.text || "");
  const [files, setFiles] = useState([]);
  const [privateNote, setPrivateNote] = useState(false);
  const [busy, setBusy] = useState(false);
  const [canned, setCanned] = useState([]);
  const [error, setError] = useState(null);
  const fileInput = useRef(null);

  useEffect(() => {
    if (editing) inputRef.current?.focus();
  }, []);

  // A leading "/" looks up canned responses by their shortcode.
  useEffect(() => {
    const match = /^\/([\w-]*)$/.exec(text);
    if (!match) {
      setCanned([]);
      return;
    }
    const timer = setTimeout(() => {
      get(query("/api/inbox/canned-responses", { q: match[1] || undefined }))
        .then((items) => setCanned(items.slice(0, 8)))
        .catch(() => setCanned([]));
    }, 150);
    return () => clearTimeout(timer);
  }, [text]);

  const send = async (event) => {
    event?.preventDefault();
    if (busy || (!text.trim() && !files.length)) return;
    setBusy(true);
    setError(null);
    try {
      if (editing) {
        await put(`/api/inbox/conversations/${id}/messages/${editing.id}`, { text });
      } else {
        const uploaded = [];
        for (const file of files) uploaded.push((await upload(file)).id);
        const body = { text: text.trim() || null, attachments: uploaded, private: privateNote };
        if (replyTo) body.reply_to = replyTo.id;
        await post(`/api/inbox/conversations/${id}/messages`, body);
      }
      setText("");
      setFiles([]);
      onDone();
    } catch (failure) {
      setError(Object.values(failure.fields || {})[0] || failure.message);
    } finally {
      setBusy(false);
    }
  };
  const keys = (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      if (canned.length) {
        event.preventDefault();
        setText(canned[0].content);
        return;
      }
      send(event);
    } else if (event.key === "Escape") {
      setText("");
      onDone();
    }
  };
  return (
    <form class={`composer${privateNote ? " private" : ""}`} onSubmit={send}>
      {(replyTo || editing) && (
        <div class="composer-context">
          <span>
            {editing ? t("Editing your message") : t("Replying to")}: <em>{(editing || replyTo).text || t("Attachment")}</em>
          </span>
          <button type="button" class="icon-button" onClick={() => { setText(""); onDone(); }} aria-label={t("Cancel")}>
            <Icon name="close" size={14} />
          </button>
        </div>
      )}
      {canned.length > 0 && (
        <ul class="canned" role="listbox" aria-label={t("Canned responses")}>
          {canned.map((item) => (
            <li key={item.id}>
              <button type="button" onClick={() => { setText(item.content); inputRef.current?.focus(); }}>
                <strong>/{item.shortcode}</strong> <span>{item.content}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      {files.length > 0 && (
        <ul class="files">
          {files.map((file, index) => (
            <li key={index}>
              {file.name}
              <button type="button" class="icon-button" onClick={() => setFiles(files.filter((_, i) => i !== index))} aria-label={t("Remove")}>
                <Icon name="close" size={12} />
              </button>
            </li>
          ))}
        </ul>
      )}
      {error && <p class="failure small" role="alert">{error}</p>}
      <div class="composer-row">
        <textarea
          ref={inputRef}
          rows={2}
          dir="auto"
          name="reply"
          placeholder={privateNote ? t("Write a private note for your team") : t("Write a reply, or / for canned responses")}
          value={text}
          onInput={(event) => setText(event.currentTarget.value)}
          onKeyDown={keys}
        />
        <div class="composer-buttons">
          {!editing && (
            <>
              <button type="button" class="icon-button" onClick={() => fileInput.current.click()} aria-label={t("Attach files")} title={t("Attach files")}>
                <Icon name="attach" />
              </button>
              <input ref={fileInput} type="file" multiple hidden onChange={(event) => setFiles([...files, ...event.currentTarget.files])} />
              <label class="toggle">
                <input type="checkbox" checked={privateNote} onChange={(event) => setPrivateNote(event.currentTarget.checked)} />
                {t("Private note")}
              </label>
            </>
          )}
          <button type="submit" class="primary" disabled={busy} data-action="send">
            <Icon name="send" size={16} /> {editing ? t("Save") : t("Send")}
          </button>
        </div>
      </div>
    </form>
  );
}

function ForwardDialog({ message, from, onClose }) {
  const [search, setSearch] = useState("");
  const searching = useSettled(search);
  const found = useLoad(
    () => get(query("/api/inbox/conversations", { q: searching.trim(), limit: 20 })).then((page) => page.items.filter((item) => item.id !== from)),
    [searching],
  );
  const forward = async (target) => {
    try {
      await post(`/api/inbox/conversations/${from}/messages/${message.id}/forward`, { conversation_id: target.id });
      toast(t("Forwarded to {name}", { name: target.customer.name }));
      onClose();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <Modal title={t("Forward to…")} onClose={onClose}>
      <input type="search" placeholder={t("Search name, phone or text")} value={search} onInput={(event) => setSearch(event.currentTarget.value)} />
      <Loading state={found}>
        {(items) => (
          <ul class="pick-list">
            {items.map((item) => (
              <li key={item.id}>
                <button type="button" onClick={() => forward(item)}>
                  <Avatar name={item.customer.name} /> {item.customer.name} <span class="muted" dir="ltr">{item.customer.phone}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </Loading>
    </Modal>
  );
}

function TicketDialog({ chat, draft, onClose }) {
  const [values, setValues] = useState({
    title: draft.title || "",
    priority: draft.priority || "normal",
    description: draft.description || "",
  });
  const [errors, setErrors] = useState({});
  const submit = async (event) => {
    event.preventDefault();
    try {
      const ticket = await post("/api/tickets", {
        title: values.title,
        priority: values.priority,
        description: values.description || null,
        conversation_id: chat.id,
      });
      toast(t("Ticket #{number} created", { number: ticket.number }));
      onClose();
    } catch (error) {
      setErrors(error.fields || { title: error.message });
    }
  };
  const set = (name) => (event) => setValues({ ...values, [name]: event.currentTarget.value });
  return (
    <Modal title={t("Create a ticket from this chat")} onClose={onClose}>
      <form class="stack" onSubmit={submit}>
        <Field label={t("Title")} error={errors.title}>
          <input name="title" required value={values.title} onInput={set("title")} />
        </Field>
        <Field label={t("Priority")} error={errors.priority}>
          <select name="priority" value={values.priority} onChange={set("priority")}>
            {["low", "normal", "high", "urgent"].map((value) => (
              <option value={value}>{priorityName(value)}</option>
            ))}
          </select>
        </Field>
        <Field label={t("Description")} error={errors.description}>
          <textarea name="description" rows={3} value={values.description} onInput={set("description")} />
        </Field>
        <button type="submit" class="primary">{t("Create the ticket")}</button>
      </form>
    </Modal>
  );
}

function CustomerPanel({ customerId, onCreateTicket }) {
  const customer = useLoad(() => get(`/api/crm/customers/${customerId}`), [customerId]);
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
  const known = useLoad(() => (adding ? get("/api/inbox/labels") : Promise.resolve([])), [adding]);
  const save = async (labels) => {
    try {
      onChange(await post(`/api/inbox/conversations/${chat.id}/labels`, { labels }));
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
