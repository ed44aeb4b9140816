// AI help's settings: the knowledge base, which everyone searches and reads and managers and
// admins write (AI help grounds its suggestions in the articles and cites them); the assistant
// that answers customers; and the organization's own AI server (admins).
import { useState } from "preact/hooks";
import { get, patch, post, put, remove } from "../api.js";
import { Empty, Failure, Field, Icon, Loading, toast, useForm, useLoad } from "./ui.jsx";
import { paths } from "../paths.js";
import { can, role } from "../session.js";
import { formatDateTime, t } from "../i18n.js";
import { languageName } from "../words.js";

const keeps = () => ["admin", "manager"].includes(role());
const EMPTY = { title: "", body: "", language: "", tags: "" };

export function KnowledgeBase() {
  const [query, setQuery] = useState("");
  const [editing, setEditing] = useState(null); // an article, or {} for a new one
  const articles = useLoad(
    () => get(query.trim() ? `${paths.inbox.knowledge}?q=${encodeURIComponent(query.trim())}` : paths.inbox.knowledge),
    [query],
  );
  const drop = async (item) => {
    try {
      await remove(paths.inbox.article(item.id));
      articles.reload();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  return (
    <section class="card stack" data-knowledge>
      <h2>{t("Knowledge base")}</h2>
      <p class="muted small">{t("Articles AI help answers from. Each suggestion names the articles it used.")}</p>
      <input type="search" dir="auto" aria-label={t("Search the articles")} placeholder={t("Search the articles")} value={query} onInput={(event) => setQuery(event.currentTarget.value)} />
      <Loading state={articles}>
        {(page) =>
          page.items.length ? (
            <ul class="mini-list">
              {page.items.map((item) => (
                <li key={item.id} data-article>
                  <strong dir="auto">{item.title}</strong>
                  <span class="muted small">{languageName(item.language)}{item.tags.length ? ` · ${item.tags.join(", ")}` : ""}</span>
                  {keeps() && (
                    <>
                      <button type="button" class="link-button small" onClick={() => setEditing(item)}>{t("Edit")}</button>
                      <button type="button" class="icon-button" aria-label={t("Delete")} onClick={() => drop(item)}><Icon name="trash" size={14} /></button>
                    </>
                  )}
                </li>
              ))}
            </ul>
          ) : (
            <Empty>{query.trim() ? t("No article answers this.") : t("No articles yet.")}</Empty>
          )
        }
      </Loading>
      {keeps() && !editing && (
        <button type="button" data-action="new-article" onClick={() => setEditing({})}>{t("New article")}</button>
      )}
      {editing && (
        <ArticleForm
          key={editing.id || "new"}
          article={editing}
          onDone={() => {
            setEditing(null);
            articles.reload();
          }}
        />
      )}
    </section>
  );
}

function ArticleForm({ article, onDone }) {
  const start = article.id ? { ...article, tags: article.tags.join(", ") } : EMPTY;
  const form = useForm(start, async (values) => {
    const body = {
      title: values.title,
      body: values.body,
      tags: values.tags.split(/[,،]/).map((tag) => tag.trim()).filter(Boolean),
      ...(values.language ? { language: values.language } : {}),
    };
    if (article.id) await patch(paths.inbox.article(article.id), body);
    else await post(paths.inbox.knowledge, body);
    toast(t("Saved."));
    onDone();
  });
  return (
    <form class="stack" onSubmit={form.onSubmit} data-article-form>
      <Field label={t("Title")} error={form.errors.title}><input dir="auto" value={form.values.title} onInput={form.set("title")} /></Field>
      <Field label={t("Text")} error={form.errors.body}><textarea dir="auto" rows={6} value={form.values.body} onInput={form.set("body")} /></Field>
      <Field label={t("Language")} error={form.errors.language}>
        <select value={form.values.language} onChange={form.set("language")}>
          <option value="">{t("The organization's language")}</option>
          <option value="ar">{languageName("ar")}</option>
          <option value="en">{languageName("en")}</option>
        </select>
      </Field>
      <Field label={t("Tags, separated by commas")} error={form.errors.tags}><input dir="auto" value={form.values.tags} onInput={form.set("tags")} /></Field>
      <Failure message={form.failure} />
      <div class="row">
        <button type="submit" class="primary" disabled={form.busy}>{t("Save")}</button>
        <button type="button" class="link-button" onClick={onDone}>{t("Cancel")}</button>
      </div>
    </form>
  );
}

// Which AI server the organization uses: the installation's, or its own (any OpenAI-compatible
// address the hub may call; the key is kept sealed and never shown again).
export function AIServer() {
  const current = useLoad(() => get(paths.settings.ai), []);
  return <Loading state={current}>{(data) => <AIServerForm data={data} onChanged={current.reload} />}</Loading>;
}

function AIServerForm({ data, onChanged }) {
  const own = data.source === "organization";
  const form = useForm(
    { base_url: data.base_url || "", model: data.model || "", embeddings_model: data.embeddings_model || "", api_key: "" },
    async (values, setValues) => {
      const body = { base_url: values.base_url.trim(), model: values.model.trim(), embeddings_model: values.embeddings_model.trim() || null };
      if (values.api_key) body.api_key = values.api_key; // left empty: the key kept stays
      await put(paths.settings.ai, body);
      setValues((old) => ({ ...old, api_key: "" }));
      toast(t("Saved."));
      onChanged();
    },
  );
  const useInstallation = async () => {
    try {
      await remove(paths.settings.ai);
      toast(t("Saved."));
      onChanged();
    } catch (error) {
      toast(error.message, "error");
    }
  };
  const writes = can("settings", "write");
  return (
    <form class="card stack" onSubmit={form.onSubmit} data-ai-server>
      <h2>{t("AI server")}</h2>
      <p class="muted small" data-ai-source>
        {own
          ? t("This organization uses its own AI server.")
          : data.source === "installation"
            ? t("This organization uses the installation's AI server.")
            : t("No AI server is set up: AI help is off until one is.")}
      </p>
      <Field label={t("Address (OpenAI-compatible, ending in /v1)")} error={form.errors.base_url}>
        <input dir="ltr" type="url" disabled={!writes} placeholder="https://api.openai.com/v1" value={form.values.base_url} onInput={form.set("base_url")} />
      </Field>
      <Field label={t("Chat model")} error={form.errors.model}><input dir="ltr" disabled={!writes} value={form.values.model} onInput={form.set("model")} /></Field>
      <Field label={t("Embeddings model (optional)")} error={form.errors.embeddings_model}>
        <input dir="ltr" disabled={!writes} value={form.values.embeddings_model} onInput={form.set("embeddings_model")} />
      </Field>
      <Field label={t("Key")} error={form.errors.api_key}>
        <input dir="ltr" type="password" autocomplete="off" disabled={!writes} placeholder={data.has_key ? t("Kept; type a new one to change it") : ""} value={form.values.api_key} onInput={form.set("api_key")} />
      </Field>
      <Failure message={form.failure} />
      {writes && (
        <div class="row">
          <button type="submit" class="primary" disabled={form.busy}>{t("Use this server")}</button>
          {own && <button type="button" class="link-button" data-action="ai-installation" onClick={useInstallation}>{t("Use the installation's server")}</button>}
        </div>
      )}
    </form>
  );
}

// Monday first, as the hub counts days (0 to 6).
const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];
const weekday = (day) => formatDateTime(new Date(Date.UTC(2023, 0, 2 + day)), { weekday: "long", timeZone: "UTC" });

// The assistant that answers customers from the knowledge base: on which channels, when, and
// when it gives a conversation to the team.
export function AssistantSettings() {
  const settings = useLoad(() => Promise.all([get(paths.inbox.assistant), get(paths.channels)]), []);
  return (
    <Loading state={settings}>{([data, channels]) => <AssistantForm data={data} channels={channels} onSaved={settings.reload} />}</Loading>
  );
}

function AssistantForm({ data, channels, onSaved }) {
  const form = useForm({ ...data, handoff_after_turns: String(data.handoff_after_turns) }, async (values) => {
    await put(paths.inbox.assistant, { ...values, handoff_after_turns: Number(values.handoff_after_turns) });
    toast(t("Saved."));
    onSaved();
  });
  const { values, setValues } = form;
  const writes = can("settings", "write");
  const toggleChannel = (id) =>
    setValues((old) => ({ ...old, channel_ids: old.channel_ids.includes(id) ? old.channel_ids.filter((c) => c !== id) : [...old.channel_ids, id] }));
  const setHours = (index, field, value) =>
    setValues((old) => ({ ...old, hours: old.hours.map((row, n) => (n === index ? { ...row, [field]: field === "day" ? Number(value) : value } : row)) }));
  return (
    <form class="card stack" onSubmit={form.onSubmit} data-assistant>
      <h2>{t("Assistant for customers")}</h2>
      <p class="muted small">{t("It answers customers from the knowledge base alone and hands the conversation to the team when it is unsure, when the customer asks for a person, or after its turns.")}</p>
      <label class="toggle">
        <input type="checkbox" disabled={!writes} checked={values.enabled} onChange={form.set("enabled")} data-action="assistant-on" />
        {t("Answer customers on the channels below")}
      </label>
      <fieldset class="stack">
        <legend>{t("Channels")}</legend>
        {channels.map((channel) => (
          <label class="toggle" key={channel.id}>
            <input type="checkbox" disabled={!writes} checked={values.channel_ids.includes(channel.id)} onChange={() => toggleChannel(channel.id)} data-channel={channel.id} />
            <bdi>{channel.name}</bdi>
          </label>
        ))}
        {form.errors.channel_ids && <p class="failure small">{form.errors.channel_ids}</p>}
      </fieldset>
      <fieldset class="stack">
        <legend>{t("Hours (none: at any time)")}</legend>
        {values.hours.map((row, index) => (
          <div class="row" key={index} data-hours>
            <select disabled={!writes} aria-label={t("Day")} value={row.day} onChange={(event) => setHours(index, "day", event.currentTarget.value)}>
              {WEEKDAYS.map((day) => <option key={day} value={day}>{weekday(day)}</option>)}
            </select>
            <input type="time" disabled={!writes} aria-label={t("From")} value={row.start} onInput={(event) => setHours(index, "start", event.currentTarget.value)} />
            <input type="time" disabled={!writes} aria-label={t("To")} value={row.end} onInput={(event) => setHours(index, "end", event.currentTarget.value)} />
            {writes && <button type="button" class="icon-button" aria-label={t("Delete")} onClick={() => setValues((old) => ({ ...old, hours: old.hours.filter((_, n) => n !== index) }))}><Icon name="trash" size={14} /></button>}
          </div>
        ))}
        {form.errors.hours && <p class="failure small">{form.errors.hours}</p>}
        {writes && <button type="button" class="link-button" onClick={() => setValues((old) => ({ ...old, hours: [...old.hours, { day: 6, start: "09:00", end: "17:00" }] }))}>{t("Add hours")}</button>}
      </fieldset>
      <Field label={t("Hand to the team after this many answers")} error={form.errors.handoff_after_turns}>
        <input type="number" min="1" max="20" disabled={!writes} value={values.handoff_after_turns} onInput={form.set("handoff_after_turns")} />
      </Field>
      <Field label={t("A conversation handed over")} error={form.errors.handoff_to}>
        <select disabled={!writes} value={values.handoff_to} onChange={form.set("handoff_to")}>
          <option value="round_robin">{t("goes to the next agent online")}</option>
          <option value="unassigned">{t("waits unassigned")}</option>
        </select>
      </Field>
      <Failure message={form.failure} />
      {writes && <button type="submit" class="primary" disabled={form.busy}>{t("Save")}</button>}
    </form>
  );
}
