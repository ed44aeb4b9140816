"""The knowledge base: the organization's articles, kept by managers and admins, searched by
everyone in the inbox, and what AI help grounds its suggestions in (and cites).

Search works on a folded form of each article (`search_form`): lower case, Arabic without vowel
marks, letter variants or the article and conjunction prefixes (الفاتورة and وفاتورة both match
فاتورة), English without a plural s. The same form is asked for, as any of the question's
words, and ranked by the database's full-text ranking (FTS5's bm25 on SQLite, ts_rank on
PostgreSQL). Where the AI server makes embeddings, articles are also found by meaning."""

from __future__ import annotations

import math
import re
import uuid
from typing import Any

import structlog
from sqlalchemy import bindparam, func, literal_column, select, text, update

from hub import ai
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, on_postgres, utcnow
from hub.errors import Forbidden, InvalidInput, NotFound
from hub.i18n import N_, fold
from hub.pagination import paginate
from hub.runtime import Runtime
from inbox.models import KnowledgeArticle

log = structlog.get_logger(__name__)

# The longest prefix first, so وال is taken whole rather than و alone.
ARABIC_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال")
MAX_QUESTION_WORDS = 30


def search_words(text_: str) -> list[str]:
    """The words of a text in the form searches compare."""
    words = []
    for word in re.findall(r"\w+", fold(text_)):
        if word.isascii():
            if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
                word = word[:-1]
        else:
            for prefix in ARABIC_PREFIXES:
                if word.startswith(prefix) and len(word) - len(prefix) >= 2:
                    word = word[len(prefix) :]
                    break
        words.append(word)
    return words


# Words that say nothing about what is asked, in the form searches compare: a question made
# only of them finds nothing.
STOP_WORDS = frozenset(
    search_words(
        "a an and are as at be but by can could do does for from had has have how i if in is it its "
        "me my no not of on or our please so that the their them there this to was we what when "
        "where which who why will with would you your hello hi thanks thank في من على الى إلى عن مع "
        "هل ما ماذا كيف لماذا متى اين أين هذا هذه ذلك التي الذي انا أنا انت أنت نحن هو هي لو او أو "
        "ان إن لا نعم شكرا مرحبا السلام عليكم"
    )
)


def search_form(title: str, body: str, tags: list[str]) -> str:
    return " ".join(search_words(" ".join([title, *tags, body])))


def question_words(question: str) -> list[str]:
    """The words worth asking for, once each, in order."""
    wanted = [word for word in search_words(question) if word not in STOP_WORDS and len(word) > 1]
    return list(dict.fromkeys(wanted))[:MAX_QUESTION_WORDS]


def _manages_knowledge(user: CurrentUser) -> None:
    if user.role not in ("admin", "manager"):
        raise Forbidden()


def _check_tags(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))


async def list_articles(
    session: HubAsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[KnowledgeArticle], str | None]:
    rows, next_cursor = await paginate(
        session, select(KnowledgeArticle), KnowledgeArticle.id, cursor=cursor, limit=limit
    )
    return [row[0] for row in rows], next_cursor


async def article(session: HubAsyncSession, article_id: uuid.UUID) -> KnowledgeArticle:
    found = await session.get(KnowledgeArticle, article_id)
    if found is None:
        raise NotFound()
    return found


async def save_article(
    session: HubAsyncSession,
    user: CurrentUser,
    *,
    article_id: uuid.UUID | None,
    title: str | None = None,
    body: str | None = None,
    language: str | None = None,
    tags: list[str] | None = None,
) -> KnowledgeArticle:
    """A new article (title and body required), or changes to one; its search form follows, and
    an embedding is made after the commit for a new or changed text."""
    _manages_knowledge(user)
    if article_id is None:
        saved = KnowledgeArticle(
            title=(title or "").strip(),
            body=(body or "").strip(),
            language=language or user.organization_language,
            tags=_check_tags(tags or []),
        )
        session.add(saved)
    else:
        saved = await article(session, article_id)
        if title is not None:
            saved.title = title.strip()
        if body is not None:
            saved.body = body.strip()
        if language is not None:
            saved.language = language
        if tags is not None:
            saved.tags = _check_tags(tags)
    if not saved.title or not saved.body:
        raise InvalidInput(N_("This field is required."), field="title" if not saved.title else "body")
    form = search_form(saved.title, saved.body, saved.tags)
    if form != saved.search_text:
        saved.search_text = form
        saved.embedding, saved.embedding_model = None, None  # made again for the new text
    saved.updated_by = user.id
    saved.updated_at = utcnow()
    await session.flush()
    saved_id = saved.id

    async def embed() -> None:
        from hub.tasks import kick

        await kick("inbox.embed_article", organization_id=str(user.organization_id), article_id=str(saved_id))

    if saved.embedding is None:  # the text is new or changed (the task asks whether a model is set)
        session.after_commit(embed)
    await session.commit()
    return saved


async def delete_article(session: HubAsyncSession, user: CurrentUser, article_id: uuid.UUID) -> None:
    _manages_knowledge(user)
    await session.delete(await article(session, article_id))
    await session.commit()


async def search_articles(
    session: HubAsyncSession, question: str, *, limit: int = 10, meaning: list[float] | None = None
) -> list[KnowledgeArticle]:
    """The organization's articles that answer a question best, best first: by its words, and
    by its meaning where an embedding of the question is given (the two lists merged by rank)."""
    by_words = await _by_words(session, question, limit)
    if meaning is None:
        return by_words
    by_meaning = await _by_meaning(session, meaning, limit)
    # Reciprocal rank fusion: an article high in either list comes first, in both higher still.
    scores: dict[uuid.UUID, float] = {}
    found: dict[uuid.UUID, KnowledgeArticle] = {}
    for ranked in (by_words, by_meaning):
        for rank, item in enumerate(ranked):
            scores[item.id] = scores.get(item.id, 0.0) + 1.0 / (60 + rank)
            found[item.id] = item
    return sorted(found.values(), key=lambda item: -scores[item.id])[:limit]


async def _by_words(session: HubAsyncSession, question: str, limit: int) -> list[KnowledgeArticle]:
    words = question_words(question)
    if not words:
        return []
    articles = KnowledgeArticle.__table__
    if on_postgres(session):
        # Any of the words; each is letters and digits only, so none is read as an operator.
        config: Any = literal_column("'simple'")  # as the index's expression has it, or it is not used
        wanted = func.to_tsquery(config, bindparam("query", " | ".join(f"'{word}'" for word in words)))
        document = func.to_tsvector(config, articles.c.search_text)
        statement = (
            select(KnowledgeArticle)
            .where(document.op("@@")(wanted))
            .order_by(func.ts_rank(document, wanted).desc(), KnowledgeArticle.id)
            .limit(limit)
        )
        return list(await session.scalars(statement))
    ranked = [
        row.article_id
        for row in await session.execute(
            _SQLITE_MATCHES,
            {
                "query": " OR ".join(f'"{word}"' for word in words),
                "org": session.organization_id,
                "many": limit,
            },
        )
    ]
    return await _in_order(session, ranked)


# The full-text table holds every organization's articles: each row names its organization.
_SQLITE_MATCHES = (
    text(
        "SELECT article_id FROM knowledge_articles_fts WHERE knowledge_articles_fts MATCH :query "
        "AND organization_id = :org ORDER BY bm25(knowledge_articles_fts) LIMIT :many"
    )
    .bindparams(bindparam("org", type_=KnowledgeArticle.organization_id.type))
    .columns(article_id=KnowledgeArticle.id.type)
)


async def _in_order(session: HubAsyncSession, ids: list[uuid.UUID]) -> list[KnowledgeArticle]:
    """These articles, in this order (the session's tenancy filter applies)."""
    if not ids:
        return []
    found = {
        item.id: item
        for item in await session.scalars(select(KnowledgeArticle).where(KnowledgeArticle.id.in_(ids)))
    }
    return [found[article_id] for article_id in ids if article_id in found]


async def _by_meaning(session: HubAsyncSession, meaning: list[float], limit: int) -> list[KnowledgeArticle]:
    """Articles by the cosine of their embedding with the question's (a knowledge base is
    hundreds of articles, not millions: compared here, no vector index needed)."""
    rows = list(
        await session.execute(
            select(KnowledgeArticle.id, KnowledgeArticle.embedding).where(
                KnowledgeArticle.embedding.is_not(None)
            )
        )
    )
    norm = math.sqrt(sum(value * value for value in meaning)) or 1.0
    scored = []
    for article_id, vector in rows:
        if not vector or len(vector) != len(meaning):
            continue  # made by another model
        length = math.sqrt(sum(value * value for value in vector)) or 1.0
        cosine = sum(a * b for a, b in zip(vector, meaning, strict=True)) / (norm * length)
        if cosine > 0.2:
            scored.append((cosine, article_id))
    return await _in_order(
        session, [article_id for _cosine, article_id in sorted(scored, reverse=True)[:limit]]
    )


async def embed_article(runtime: Runtime, organization_id: uuid.UUID, article_id: uuid.UUID) -> None:
    """Make an article's embedding where the installation has an embeddings model and the
    organization lets text go to the AI server. Kept only if the article did not change while it
    was being made (the change makes its own)."""
    async with runtime.db.session(organization_id) as session:
        endpoint = await ai.endpoint_for(runtime, session)
        if endpoint is None or not endpoint.embeddings_model:
            return
        item = await session.get(KnowledgeArticle, article_id)
        if item is None or item.embedding_model == endpoint.embeddings_model:
            return
        if not await ai.ai_switched_on(session):
            return
        source, words = f"{item.title}\n\n{item.body}", item.search_text
        await session.commit()  # no transaction held open while the AI server works
    vectors = await ai.embed(runtime, organization_id, endpoint, [source])
    if not vectors:
        return
    async with runtime.db.session(organization_id) as session:
        await session.execute(
            update(KnowledgeArticle)
            .where(KnowledgeArticle.id == article_id, KnowledgeArticle.search_text == words)
            .values(embedding=vectors[0], embedding_model=endpoint.embeddings_model)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
