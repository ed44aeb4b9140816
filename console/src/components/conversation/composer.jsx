// The reply box: text, canned responses, attachments, private notes, editing a sent message.
import { useEffect, useRef, useState } from "preact/hooks";
import { get, post, put, query, upload } from "../../api.js";
import { Icon } from "../ui.jsx";
import { AssistTools } from "./assist.jsx";
import { t } from "../../i18n.js";
import { paths } from "../../paths.js";

export function Composer({ id, inputRef, replyTo, editing, onDone }) {
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

  // A leading "/" looks up canned responses by their shortcode; an answer that arrives after
  // the text changed is dropped, so a picked response is never offered again.
  useEffect(() => {
    const match = /^\/([\w-]*)$/.exec(text);
    if (!match) {
      setCanned([]);
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      get(query(paths.inbox.cannedResponses, { q: match[1] || undefined }))
        .then((items) => current && setCanned(items.slice(0, 8)))
        .catch(() => current && setCanned([]));
    }, 150);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [text]);

  const send = async (event) => {
    event?.preventDefault();
    if (busy || (!text.trim() && !files.length)) return;
    setBusy(true);
    setError(null);
    try {
      if (editing) {
        await put(paths.inbox.message(id, editing.id), { text });
      } else {
        const uploaded = [];
        for (const file of files) uploaded.push((await upload(file)).id);
        const body = { text: text.trim() || null, attachments: uploaded, private: privateNote };
        if (replyTo) body.reply_to = replyTo.id;
        await post(paths.inbox.messages(id), body);
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
        // Cleared here, not by the effect after the next paint: an Enter pressed at once sends.
        setText(canned[0].content);
        setCanned([]);
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
              <button type="button" onClick={() => { setText(item.content); setCanned([]); inputRef.current?.focus(); }}>
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
      {!editing && !privateNote && <AssistTools id={id} text={text} setText={setText} />}
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
