// AI help in the conversation: an answer asked of the hub comes back on this person's socket,
// piece by piece (aiChunk), whole (aiDone) or not at all (aiFailed); it can be stopped.
import { useRef, useState } from "preact/hooks";
import { post, remove } from "../../api.js";
import { events } from "../../events.js";
import { t } from "../../i18n.js";
import { useLive } from "../../live.js";
import { paths } from "../../paths.js";
import { session } from "../../session.js";

export const aiHere = () => !!session.value?.ai;

// While a request is on its way its id is not known yet, and a quick server's first pieces (or
// all of it) can come before the answer that names it: they are kept, and heard once it does.
const ASKING = Symbol("asking");

// `onText(text, done, sources)` hears the answer so far (the sources it cites once done); the
// request is one at a time.
export function useAiAnswer(onText) {
  const current = useRef(null);
  const early = useRef([]);
  const written = useRef("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const hear = (event, data) => {
    if (event === events.aiChunk) {
      written.current += data.text;
      onText(written.current, false);
      return;
    }
    current.current = null;
    setBusy(false);
    if (event === events.aiDone) onText(data.text, true, data.sources || []);
    else if (!data.cancelled) setError(data.detail);
  };
  useLive([events.aiChunk, events.aiDone, events.aiFailed], (event, data) => {
    if (current.current === ASKING) early.current.push([event, data]);
    else if (data.requestId === current.current) hear(event, data);
  });
  const start = async (path, body = {}) => {
    setError(null);
    setBusy(true);
    written.current = "";
    early.current = [];
    current.current = ASKING;
    let id;
    try {
      id = (await post(path, body)).request_id;
    } catch (failure) {
      if (current.current === ASKING) current.current = null;
      setBusy(false);
      setError(Object.values(failure.fields || {})[0] || failure.message);
      return;
    }
    if (current.current !== ASKING) {
      // Stopped before the hub said which request it was: stop it there too.
      await remove(paths.aiRequest(id)).catch(() => null);
      return;
    }
    current.current = id;
    for (const [event, data] of early.current.splice(0)) {
      if (data.requestId === id && current.current === id) hear(event, data);
    }
  };
  const stop = async () => {
    const id = current.current;
    current.current = null;
    setBusy(false);
    if (id && id !== ASKING) await remove(paths.aiRequest(id)).catch(() => null);
  };
  return { start, stop, busy, error };
}

const TONES = [
  ["grammar", () => t("Fix grammar")],
  ["friendly", () => t("Friendlier")],
  ["formal", () => t("More formal")],
  ["shorter", () => t("Shorter")],
  ["expand", () => t("Expand")],
];

// The composer's AI tools: a reply suggested, the draft improved, the draft translated into the
// customer's language. The answer fills the reply box; nothing is sent without the agent.
export function AssistTools({ id, text, setText }) {
  const [sources, setSources] = useState([]);
  const answer = useAiAnswer((written, done, cited) => {
    setText(written);
    setSources(done ? cited : []);
  });
  if (!aiHere()) return null;
  return (
    <div class="assist" data-assist>
      {answer.busy ? (
        <button type="button" class="link-button" data-action="ai-stop" onClick={answer.stop}>
          {t("Stop")}
        </button>
      ) : (
        <>
          <button type="button" class="link-button" data-action="ai-suggest" onClick={() => answer.start(paths.inbox.suggestReply(id))}>
            {t("Suggest a reply")}
          </button>
          <select
            aria-label={t("Improve the draft")}
            data-action="ai-improve"
            disabled={!text.trim()}
            value=""
            onChange={(event) => {
              const tone = event.currentTarget.value;
              if (tone) answer.start(paths.inbox.improve(id), { text, tone });
            }}
          >
            <option value="">{t("Improve…")}</option>
            {TONES.map(([tone, label]) => (
              <option key={tone} value={tone}>
                {label()}
              </option>
            ))}
          </select>
          <button type="button" class="link-button" data-action="ai-translate" disabled={!text.trim()} onClick={() => answer.start(paths.inbox.translate(id), { text })}>
            {t("Translate for the customer")}
          </button>
        </>
      )}
      {answer.error && (
        <span class="failure small" role="alert">
          {answer.error}
        </span>
      )}
      {sources.length > 0 && (
        <span class="muted small" data-sources>
          {t("Based on:")}{" "}
          {sources.map((source) => (
            <bdi key={source.id} class="source">{source.title}</bdi>
          ))}
        </span>
      )}
    </div>
  );
}

// A message shown in the reader's language on request, beside the original, never replacing it.
export function TranslateToggle({ conversationId, message }) {
  const [shown, setShown] = useState(false);
  const [translation, setTranslation] = useState("");
  const answer = useAiAnswer((written) => setTranslation(written));
  if (!aiHere() || !message.text) return null;
  const toggle = () => {
    if (shown) return setShown(false);
    setShown(true);
    if (!translation && !answer.busy) answer.start(paths.inbox.translate(conversationId), { message_id: message.id });
  };
  return (
    <>
      <button type="button" class="link-button small" data-action="ai-translate-message" onClick={toggle}>
        {shown ? t("Hide the translation") : t("Translate")}
      </button>
      {shown && (
        <p class="translation" dir="auto" data-translation>
          {answer.error || translation || t("Translating…")}
        </p>
      )}
    </>
  );
}

// A conversation (or a ticket) summarized for the reader, shown until closed; kept (as a private
// note, or a comment for the team) when the reader chooses: `path` asks for it, `keep` keeps it.
export function SummaryButton({ path, keep, keepLabel }) {
  const [summary, setSummary] = useState(null);
  const [done, setDone] = useState(false);
  const answer = useAiAnswer((written, whole) => {
    setSummary(written);
    setDone(whole);
  });
  if (!aiHere()) return null;
  return (
    <>
      <button type="button" class="link-button" data-action="ai-summarize" disabled={answer.busy} onClick={() => answer.start(path)}>
        {t("Summarize")}
      </button>
      {(summary || answer.error) && (
        <aside class="summary card" data-summary dir="auto">
          {answer.error ? <p class="failure">{answer.error}</p> : <p>{summary}</p>}
          <div class="actions-row">
            {done && !answer.error && (
              <button
                type="button"
                class="link-button"
                data-action="keep-summary"
                onClick={async () => {
                  await keep(summary);
                  setSummary(null);
                }}
              >
                {keepLabel || t("Keep as a private note")}
              </button>
            )}
            <button type="button" class="link-button" onClick={() => setSummary(null)}>
              {t("Close")}
            </button>
          </div>
        </aside>
      )}
    </>
  );
}
