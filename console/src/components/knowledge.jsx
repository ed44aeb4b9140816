// The knowledge base, in settings: everyone searches and reads the articles; managers and admins
// write them. AI help grounds its suggestions in them and cites them.
import { useState } from "preact/hooks";
import { get, patch, post, remove } from "../api.js";
import { Empty, Failure, Field, Icon, Loading, toast, useForm, useLoad } from "./ui.jsx";
import { t } from "../i18n.js";
import { paths } from "../paths.js";
import { role } from "../session.js";
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
