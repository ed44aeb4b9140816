// One message of a conversation: its text or media, who wrote it, its delivery ticks and actions.
import { Icon } from "../ui.jsx";
import { TranslateToggle } from "./assist.jsx";
import { formatDateTime, formatTime, t } from "../../i18n.js";
import { can, userId } from "../../session.js";
import { messageStatusName } from "../../words.js";

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

export function Message({ conversationId, message, quoted, names, onReply, onEdit, onDelete, onForward }) {
  const mine = message.sender_user_id === userId();
  const deleted = !!message.deleted_at;
  const author =
    message.direction === "inbound"
      ? null
      : message.by_assistant
        ? t("Assistant")
        : message.sender_user_id
          ? names[message.sender_user_id] || (mine ? t("You") : "")
          : t("Automatic");
  return (
    <div
      class={`message ${message.direction}${message.private ? " private" : ""}${message.by_assistant ? " by-assistant" : ""}${deleted ? " deleted" : ""}`}
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
            {conversationId && <TranslateToggle conversationId={conversationId} message={message} />}
          </>
        )}
        <footer>
          {author && <span class="author" data-author>{message.by_assistant && <Icon name="sparkle" size={12} />} {author}</span>}
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
