"""AI help for the agent in a conversation: a reply suggested from the conversation and the
customer's facts, a draft improved, a message or draft translated, the conversation summarized.
Each is written to the asking agent alone, token by token (`hub.ai.relay`), and nothing reaches
the customer until the agent sends it. Only the conversation's own messages, its customer's
facts and the organization's own articles and saved answers are sent, never a private note of
the team or anything of another conversation."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select

from crm.models import Customer
from hub import ai
from hub.auth import CurrentUser
from hub.db import HubAsyncSession
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.realtime import AISource
from hub.runtime import Runtime
from inbox.models import Conversation, KnowledgeArticle, Message
from inbox.services.canned_responses import canned_responses_about
from inbox.services.conversations import conversation_for_user
from inbox.services.knowledge import search_articles

TONES = {
    "grammar": "Fix the grammar and spelling only; keep the wording and the meaning.",
    "friendly": "Make it warmer and friendlier, keeping the meaning.",
    "formal": "Make it more formal and polite, keeping the meaning.",
    "shorter": "Make it shorter and clearer, keeping what matters.",
    "expand": "Expand it with a little more helpful detail, without inventing facts.",
}
# The newest messages a request carries.
RECENT_MESSAGES = 40
# What a suggestion is grounded in: the best articles and saved answers, each up to this long.
GROUNDING_ARTICLES = 3
GROUNDING_CANNED = 2
ARTICLE_CHARACTERS = 2_000


async def _conversation(
    session: HubAsyncSession, user: CurrentUser, conversation_id: uuid.UUID
) -> tuple[Conversation, Customer, str]:
    conversation, customer = await conversation_for_user(session, user, conversation_id)
    return conversation, customer, customer.language or user.organization_language


async def transcript_of(session: HubAsyncSession, conversation_id: uuid.UUID) -> list[dict[str, str]]:
    """The conversation's newest messages as chat turns: the customer's as the user's, the team's
    replies as the assistant's. Private notes and deleted messages are not sent."""
    rows = list(
        await session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.private.is_(False),
                Message.deleted_at.is_(None),
                Message.text.is_not(None),
            )
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(RECENT_MESSAGES)
        )
    )
    turns: list[dict[str, str]] = []
    size = 0
    for message in rows:  # newest first, up to the size a request may carry
        text = message.text or ""
        size += len(text)
        if size > ai.MAX_PROMPT_CHARACTERS:
            break
        turns.append({"role": "user" if message.direction == "inbound" else "assistant", "content": text})
    turns.reverse()
    return turns


def _facts(customer: Customer) -> str:
    known = [f"Name: {customer.name}"]
    if customer.email:
        known.append(f"E-mail: {customer.email}")
    if customer.tags:
        known.append("Tags: " + ", ".join(customer.tags))
    return "; ".join(known)


async def suggest_reply(
    runtime: Runtime, session: HubAsyncSession, user: CurrentUser, conversation_id: uuid.UUID
) -> str:
    """A reply to the conversation so far, in the customer's language, grounded in the knowledge
    base and the team's saved answers (searched in the answer's own task) and citing them."""
    endpoint = await ai.check_request(runtime, session)
    _conversation_row, customer, language = await _conversation(session, user, conversation_id)
    turns = await transcript_of(session, conversation_id)
    asked = [turn["content"] for turn in turns if turn["role"] == "user"]
    if not asked:
        raise InvalidInput(N_("The customer has not written anything to answer yet."), field="conversation")
    facts, question, organization_id = _facts(customer), " ".join(asked[-3:]), user.organization_id

    async def ground() -> ai.Grounded:
        sources, knowledge = await knowledge_for(runtime, organization_id, endpoint, question)
        instruction = (
            "You help a customer support agent. Suggest the agent's next reply to the customer: "
            "short, polite and useful. Use only what the conversation, the customer's facts and the "
            "knowledge below say; when they do not answer the question, say the team will check. "
            "After a sentence that uses a numbered piece of knowledge, put its number in brackets, "
            f"like [1]. The customer's facts: {facts}.\n\nKnowledge:\n{knowledge}"
        )
        return ai.Grounded(messages=[ai.system_message(instruction, language), *turns], sources=sources)

    return ai.ask(runtime, user, endpoint, [], prepare=ground)


async def knowledge_for(
    runtime: Runtime, organization_id: uuid.UUID, endpoint: ai.Endpoint, question: str
) -> tuple[list[AISource], str]:
    """The articles and saved answers that answer a question best, as sources and as the
    numbered text the prompt carries. By meaning too where articles have embeddings (the
    question's is made then, with no transaction open meanwhile)."""
    async with runtime.db.session(organization_id) as reading:
        by_meaning = await reading.scalar(
            select(exists().where(KnowledgeArticle.embedding_model == endpoint.embeddings_model))
        )
        await reading.commit()
    meaning = None
    if by_meaning and endpoint.embeddings_model:
        vectors = await ai.embed(runtime, organization_id, endpoint, [question])
        meaning = vectors[0] if vectors else None
    async with runtime.db.session(organization_id) as reading:
        articles = await search_articles(reading, question, limit=GROUNDING_ARTICLES, meaning=meaning)
        saved = await canned_responses_about(reading, question, limit=GROUNDING_CANNED)
        await reading.commit()
    sources = [AISource(id=str(item.id), title=item.title, kind="article") for item in articles]
    sources += [AISource(id=str(item.id), title=f"/{item.shortcode}", kind="canned") for item in saved]
    texts = [item.body for item in articles] + [item.content for item in saved]
    if not sources:
        return [], "Nothing in the knowledge base is about this."
    pieces = [
        f"[{number}] {source.title}\n{body[:ARTICLE_CHARACTERS]}"
        for number, (source, body) in enumerate(zip(sources, texts, strict=True), start=1)
    ]
    return sources, "\n\n".join(pieces)


async def improve_draft(
    runtime: Runtime,
    session: HubAsyncSession,
    user: CurrentUser,
    conversation_id: uuid.UUID,
    *,
    text: str,
    tone: str,
) -> str:
    """The agent's draft, rewritten in the chosen way, in the draft's own language."""
    if tone not in TONES:
        raise InvalidInput(N_("Choose one of: grammar, friendly, formal, shorter, expand."), field="tone")
    endpoint = await ai.check_request(runtime, session)
    await _conversation(session, user, conversation_id)  # the agent's own conversation (404 else)
    instruction = (
        f"Rewrite the support agent's draft reply. {TONES[tone]} Answer with the rewritten text only."
    )
    return ai.ask(
        runtime,
        user,
        endpoint,
        [{"role": "system", "content": instruction}, {"role": "user", "content": text}],
    )


async def translate_text(
    runtime: Runtime,
    session: HubAsyncSession,
    user: CurrentUser,
    conversation_id: uuid.UUID,
    *,
    text: str | None,
    message_id: uuid.UUID | None,
    to: str | None,
) -> str:
    """A message of the conversation into the agent's language, or the agent's draft into the
    customer's (`to` chooses another language)."""
    endpoint = await ai.check_request(runtime, session)
    _conversation_row, _customer, customer_language = await _conversation(session, user, conversation_id)
    reader = ai.reader_language(user)
    if message_id is not None:
        message = await session.scalar(
            select(Message).where(
                Message.id == message_id,
                Message.conversation_id == conversation_id,
                Message.deleted_at.is_(None),
            )
        )
        if message is None or not message.text:
            raise NotFound()
        source, target = message.text, to or reader
    elif text:
        source, target = text, to or customer_language
    else:
        raise InvalidInput(N_("Give the text or the message to translate."), field="text")
    instruction = "Translate the text. Answer with the translation only, keeping names and numbers."
    return ai.ask(
        runtime, user, endpoint, [ai.system_message(instruction, target), {"role": "user", "content": source}]
    )


async def summarize(
    runtime: Runtime, session: HubAsyncSession, user: CurrentUser, conversation_id: uuid.UUID
) -> str:
    """The conversation so far in a few lines, in the reader's language."""
    endpoint = await ai.check_request(runtime, session)
    await _conversation(session, user, conversation_id)
    turns = await transcript_of(session, conversation_id)
    if not turns:
        raise InvalidInput(N_("There is nothing to summarize yet."), field="conversation")
    reader = ai.reader_language(user)
    transcript = "\n".join(
        f"{'Customer' if turn['role'] == 'user' else 'Agent'}: {turn['content']}" for turn in turns
    )
    instruction = (
        "Summarize this support conversation for a colleague in three to five short lines: what "
        "the customer wants, what was done, what is left."
    )
    return ai.ask(
        runtime,
        user,
        endpoint,
        [ai.system_message(instruction, reader), {"role": "user", "content": transcript}],
    )
