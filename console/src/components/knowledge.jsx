// AI help's settings: the organization's own AI server (admins), and the knowledge base, which
// everyone searches and reads and managers and admins write. AI help grounds its suggestions in
// the articles and cites them.
import { useState } from "preact/hooks";
import { get, patch, post, put, remove } from "../api.js";
import { Empty, Failure, Field, Icon, Loading, toast, useForm, useLoad } from "./ui.jsx";
import { t } from "../i18n.js";
import { paths } from "../paths.js";
import { can, role } from "../session.js";
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
