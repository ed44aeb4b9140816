// The shared inbox: conversations by view, with the open one beside them (components/conversation).
import { useEffect, useRef, useState } from "preact/hooks";
import { get, query } from "../api.js";
import { Conversation, STATUSES } from "../components/conversation/conversation.jsx";
import { Avatar, Empty, Link, Loading, MoreButton, Tabs, useLoad, usePagedLoad, useSettled } from "../components/ui.jsx";
import { clientEvents, events } from "../events.js";
import { formatNumber, formatTime, t } from "../i18n.js";
import { emit, useLive } from "../live.js";
import { paths } from "../paths.js";
import { navigate } from "../router.js";
import { role, userId } from "../session.js";
import { useTeam } from "../team.js";
import { conversationStatusName } from "../words.js";

function belongs(conversation, view, status) {
  if (view === "mine" && conversation.assignee_id !== userId()) return false;
  if (view === "unassigned" && conversation.assignee_id) return false;
  if (status && conversation.status !== status) return false;
  return true;
}

const newestFirst = (a, b) => (b.last_message_at || b.created_at).localeCompare(a.last_message_at || a.created_at);

export function Inbox({ id }) {
  const agent = role() === "agent";
  const [view, setView] = useState(localStorage.getItem("hub.inbox.view") || (agent ? "mine" : "all"));
  const [status, setStatus] = useState("open");
  const [search, setSearch] = useState("");
  const searching = useSettled(search);
  const [label, setLabel] = useState("");
  const labels = useLoad(() => get(paths.inbox.labels), []);
  const searchBox = useRef(null);
  const { team, names } = useTeam();
  const list = usePagedLoad(
    (cursor) =>
      get(
        query(paths.inbox.conversations, {
          assignee: view === "mine" ? "me" : view === "unassigned" ? "unassigned" : undefined,
          status,
          label,
          q: searching.trim(),
          limit: 50,
          cursor,
        }),
      ),
    [view, status, searching, label],
  );

  useLive([events.newMessage, events.conversationUpdated, events.conversationUnassigned], (event, data) => {
    list.update((items) => {
      if (!items) return items;
      const rest = items.filter((item) => item.id !== data.chatId);
      if (event === events.conversationUnassigned) return rest;
      const conversation = { ...data.conversation };
      if (event === events.newMessage && data.chatId === id) conversation.unread_count = 0;
      if (!belongs(conversation, view, status) || (label && !conversation.labels.includes(label))) return rest;
      // A search's matches come from the hub; the live list keeps only those it already shows.
      if (searching && !items.some((item) => item.id === data.chatId)) return rest;
      return [conversation, ...rest].sort(newestFirst);
    });
    if (event === events.newMessage && data.chatId === id) emit(clientEvents.markAsRead, id);
  });

  // The tab's title counts what is unread, so a waiting customer shows from another tab.
  useEffect(() => {
    const unread = (list.data || []).reduce((sum, item) => sum + (item.unread_count ? 1 : 0), 0);
    document.title = unread ? `(${formatNumber(unread)}) ${t("Hub")}` : t("Hub");
  }, [list.data]);
  useEffect(() => () => (document.title = t("Hub")), []);

  const move = (step) => {
    const items = list.data || [];
    const here = items.findIndex((item) => item.id === id);
    const next = items[Math.min(items.length - 1, Math.max(0, here + step))];
    if (next) navigate(`/inbox/${next.id}`);
  };
  useEffect(() => {
    const keys = (event) => {
      const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
      if (event.altKey && event.key === "ArrowDown") move(1);
      else if (event.altKey && event.key === "ArrowUp") move(-1);
      else if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
      else if (event.key === "j") move(1);
      else if (event.key === "k") move(-1);
      else if (event.key === "/") {
        event.preventDefault();
        searchBox.current?.focus();
      } else return;
    };
    window.addEventListener("keydown", keys);
    return () => window.removeEventListener("keydown", keys);
  });

  const views = [
    ["mine", t("Mine")],
    ["unassigned", t("Unassigned")],
    ["all", t("All")],
  ];
  return (
    <div class={`inbox${id ? " has-open" : ""}`}>
      <aside class="conversation-list" aria-label={t("Conversations")}>
        <Tabs
          items={agent ? views.slice(0, 1) : views}
          value={view}
          onChange={(next) => {
            localStorage.setItem("hub.inbox.view", next);
            setView(next);
          }}
        />
        <div class="list-filters">
          <select aria-label={t("Status")} value={status} onChange={(event) => setStatus(event.currentTarget.value)}>
            {STATUSES.map((value) => (
              <option value={value}>{conversationStatusName(value)}</option>
            ))}
            <option value="">{t("Any status")}</option>
          </select>
          {labels.data?.length > 0 && (
            <select aria-label={t("Label")} value={label} onChange={(event) => setLabel(event.currentTarget.value)}>
              <option value="">{t("Any label")}</option>
              {labels.data.map((item) => (
                <option value={item.name}>{item.name}</option>
              ))}
            </select>
          )}
          <input
            ref={searchBox}
            type="search"
            placeholder={t("Search name, phone or text")}
            value={search}
            onInput={(event) => setSearch(event.currentTarget.value)}
          />
        </div>
        <Loading state={list}>
          {(items) =>
            items.length ? (
              <ul class="conversations" onScroll={(event) => {
                const box = event.currentTarget;
                if (box.scrollTop + box.clientHeight >= box.scrollHeight - 40 && list.hasMore) list.more();
              }}>
                {items.map((item) => (
                  <li key={item.id}>
                    <Link
                      href={`/inbox/${item.id}`}
                      class={`conversation-item${item.id === id ? " active" : ""}${item.unread_count ? " unread" : ""}`}
                      data-conversation={item.id}
                    >
                      <Avatar name={item.customer.name} />
                      <span class="conversation-text">
                        <span class="conversation-top">
                          <strong class="name">{item.customer.name}</strong>
                          <time>{formatTime(item.last_message_at)}</time>
                        </span>
                        <span class="conversation-bottom">
                          <span class="preview">{item.last_message_preview || ""}</span>
                          {item.unread_count > 0 && (
                            <span class="badge" data-unread={item.unread_count}>
                              {item.unread_count}
                            </span>
                          )}
                        </span>
                        {item.labels.length > 0 && (
                          <span class="chips">
                            {item.labels.map((label) => (
                              <span class="chip small">{label}</span>
                            ))}
                          </span>
                        )}
                        <span class="conversation-meta muted">
                          {conversationStatusName(item.status)}
                          {item.assignee_id ? ` · ${names[item.assignee_id] || (item.assignee_id === userId() ? t("You") : t("Assigned"))}` : ` · ${t("Unassigned")}`}
                        </span>
                      </span>
                    </Link>
                  </li>
                ))}
                <li><MoreButton list={list} /></li>
              </ul>
            ) : (
              <Empty>{t("No conversations here.")}</Empty>
            )
          }
        </Loading>
      </aside>
      {id ? (
        <Conversation key={id} id={id} team={team} names={names} />
      ) : (
        <section class="conversation empty-pane">
          <Empty>{t("Choose a conversation to read it.")}</Empty>
          <p class="muted shortcuts">{t("Shortcuts: j / k next and previous, / search, r reply, e resolve.")}</p>
        </section>
      )}
    </div>
  );
}
