"""HTTP for the shared inbox (channel-neutral, under /api/inbox)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import UNSET
from sqlalchemy import select

from hub.auth import CurrentUser
from hub.controllers import Cursor, Limit, RuntimeDep, SessionDep
from hub.db import utcnow
from hub.errors import NotFound
from hub.pagination import DEFAULT_LIMIT, paginate
from hub.permissions import module_on, requires
from hub.schemas import AIRequestOut, Page
from inbox import services
from inbox.models import CannedResponse, KnowledgeArticle, Label, Message
from inbox.schemas import (
    ArticleIn,
    ArticleOut,
    ArticleUpdate,
    AssignRequest,
    AssistantReport,
    AssistantSettingsIn,
    AssistantSettingsOut,
    CannedResponseIn,
    CannedResponseOut,
    CannedResponseUpdate,
    ConversationLabels,
    ConversationOut,
    ConversationUpdate,
    EditRequest,
    ForwardRequest,
    ImproveRequest,
    InboxSettingsOut,
    InboxSettingsUpdate,
    LabelIn,
    LabelOut,
    MessageOut,
    ReplyRequest,
    SeedEditRequest,
    SeedForwardRequest,
    SendRequest,
    Status,
    TranslateRequest,
)


# One listing at two addresses: the channel-neutral inbox and the seed's WhatsApp path.
@get(
    ["/api/inbox/conversations", "/api/whatsapp/conversations"],
    guards=[requires("whatsapp", "read")],
    tags=["inbox"],
)
async def list_conversations(
    request: Request[CurrentUser, Any, Any],
    session: SessionDep,
    status: Annotated[Status | None, QueryParameter()] = None,
    assignee: Annotated[str | None, QueryParameter(max_length=64)] = None,
    channel: Annotated[uuid.UUID | None, QueryParameter()] = None,
    q: Annotated[str | None, QueryParameter(max_length=200)] = None,
    label: Annotated[str | None, QueryParameter(max_length=50)] = None,
    cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    limit: Limit = DEFAULT_LIMIT,
    changed_since: Annotated[datetime | None, QueryParameter()] = None,
) -> Page[ConversationOut]:
    """Most recent activity first, by cursor; agents see only the conversations assigned to them.
    `changed_since` (a moment) keeps those with a message or a change since: what a client that
    may have missed events reads again, in one listing."""
    rows, next_cursor = await services.list_conversations(
        session,
        request.user,
        status=status,
        assignee=assignee,
        channel_id=channel,
        query=q,
        cursor=cursor,
        limit=limit,
        label=label,
        # A moment without a zone is read as UTC.
        changed_since=changed_since.replace(tzinfo=changed_since.tzinfo or UTC) if changed_since else None,
    )
    return Page(items=await services.conversation_views(session, rows), next_cursor=next_cursor)


AI_ON = module_on("ai")


class ConversationController(Controller):
    path = "/api/inbox/conversations"
    tags = ["inbox"]  # noqa: RUF012

    @get("/{conversation_id:uuid}", guards=[requires("whatsapp", "read")])
    async def detail(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
    ) -> ConversationOut:
        conversation, customer = await services.conversation_for_user(session, request.user, conversation_id)
        return await services.conversation_view(session, conversation, customer)

    @get("/{conversation_id:uuid}/messages", guards=[requires("whatsapp", "read")])
    async def messages(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[MessageOut]:
        conversation, _ = await services.conversation_for_user(session, request.user, conversation_id)
        rows, next_cursor = await paginate(
            session,
            select(Message).where(Message.conversation_id == conversation.id),
            Message.id,
            cursor=cursor,
            limit=limit,
        )
        media = await services.attachments_of(session, [row[0].id for row in rows])
        return Page(
            items=[services.message_out(row[0], media.get(row[0].id, [])) for row in rows],
            next_cursor=next_cursor,
        )

    @post("/{conversation_id:uuid}/messages", guards=[requires("whatsapp", "write")], status_code=201)
    async def reply(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[ReplyRequest],
    ) -> MessageOut:
        message = await services.reply(
            session,
            request.user,
            conversation_id,
            text=data.text,
            private=data.private,
            reply_to=data.reply_to,
            attachment_ids=data.attachments,
        )
        return await services.message_with_media(session, message)

    @post("/{conversation_id:uuid}/assign", guards=[requires("whatsapp", "write")], status_code=200)
    async def assign(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[AssignRequest],
    ) -> ConversationOut:
        conversation, customer = await services.assign(
            session, request.user, conversation_id, data.assignee_id
        )
        return await services.conversation_view(session, conversation, customer)

    @patch("/{conversation_id:uuid}", guards=[requires("whatsapp", "write")])
    async def update(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[ConversationUpdate],
    ) -> ConversationOut:
        conversation, customer = await services.update_conversation(
            session, request.user, conversation_id, data
        )
        return await services.conversation_view(session, conversation, customer)

    @post("/{conversation_id:uuid}/read", guards=[requires("whatsapp", "write")], status_code=200)
    async def read(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
    ) -> ConversationOut:
        await services.mark_read(session, request.user, conversation_id)
        conversation, customer = await services.conversation_for_user(session, request.user, conversation_id)
        return await services.conversation_view(session, conversation, customer)

    @put("/{conversation_id:uuid}/messages/{message_id:uuid}", guards=[requires("whatsapp", "write")])
    async def edit(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        message_id: FromPath[uuid.UUID],
        data: JSONBody[EditRequest],
    ) -> MessageOut:
        await _in_conversation(session, message_id, conversation_id)
        return await services.message_with_media(
            session, await services.edit_message(session, request.user, message_id, data.text)
        )

    @delete(
        "/{conversation_id:uuid}/messages/{message_id:uuid}",
        guards=[requires("whatsapp", "write")],
        status_code=200,
    )
    async def remove(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        message_id: FromPath[uuid.UUID],
    ) -> MessageOut:
        await _in_conversation(session, message_id, conversation_id)
        return await services.message_with_media(
            session, await services.delete_message(session, request.user, message_id)
        )

    @post(
        "/{conversation_id:uuid}/messages/{message_id:uuid}/forward",
        guards=[requires("whatsapp", "write")],
        status_code=201,
    )
    async def forward(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        message_id: FromPath[uuid.UUID],
        data: JSONBody[ForwardRequest],
    ) -> MessageOut:
        await _in_conversation(session, message_id, conversation_id)
        forwarded = await services.forward_message(session, request.user, message_id, data.conversation_id)
        return await services.message_with_media(session, forwarded)

    @post("/{conversation_id:uuid}/labels", guards=[requires("whatsapp", "write")], status_code=200)
    async def set_labels(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[ConversationLabels],
    ) -> ConversationOut:
        conversation, customer = await services.set_labels(
            session, request.user, conversation_id, data.labels
        )
        return await services.conversation_view(session, conversation, customer)

    # AI help (the `ai` module on and in the plan): each answers a request id at once; the answer
    # is written to the asker's sockets.
    @post(
        "/{conversation_id:uuid}/ai/suggest-reply",
        guards=[requires("whatsapp", "write"), AI_ON],
        status_code=202,
        errors=(402, 429),
    )
    async def suggest_reply(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
    ) -> AIRequestOut:
        """A reply suggested from the conversation and the customer's facts, in the customer's
        language; nothing is sent to the customer."""
        return AIRequestOut(
            request_id=await services.suggest_reply(runtime, session, request.user, conversation_id)
        )

    @post(
        "/{conversation_id:uuid}/ai/improve",
        guards=[requires("whatsapp", "write"), AI_ON],
        status_code=202,
        errors=(402, 429),
    )
    async def improve_draft(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[ImproveRequest],
    ) -> AIRequestOut:
        """The agent's draft rewritten: grammar, friendly, formal, shorter or expand."""
        return AIRequestOut(
            request_id=await services.improve_draft(
                runtime, session, request.user, conversation_id, text=data.text, tone=data.tone
            )
        )

    @post(
        "/{conversation_id:uuid}/ai/translate",
        guards=[requires("whatsapp", "read"), AI_ON],
        status_code=202,
        errors=(402, 429),
    )
    async def translate(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[TranslateRequest],
    ) -> AIRequestOut:
        """A message into the reader's language, or the agent's draft into the customer's."""
        return AIRequestOut(
            request_id=await services.translate_text(
                runtime,
                session,
                request.user,
                conversation_id,
                text=data.text,
                message_id=data.message_id,
                to=data.to,
            )
        )

    @post(
        "/{conversation_id:uuid}/ai/summarize",
        guards=[requires("whatsapp", "read"), AI_ON],
        status_code=202,
        errors=(402, 429),
    )
    async def summarize(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
    ) -> AIRequestOut:
        """The conversation in a few lines, in the reader's language."""
        return AIRequestOut(
            request_id=await services.summarize(runtime, session, request.user, conversation_id)
        )


async def _in_conversation(session: SessionDep, message_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
    """404 unless the message is in that conversation; loading it here also serves the service's
    own look-up from the session, so the message is read once."""
    message = await session.scalar(
        select(Message).where(Message.id == message_id, Message.conversation_id == conversation_id)
    )
    if message is None:
        raise NotFound()


class LabelController(Controller):
    path = "/api/inbox/labels"
    tags = ["inbox"]  # noqa: RUF012

    @get("/", guards=[requires("whatsapp", "read")])
    async def list_labels(self, session: SessionDep) -> list[LabelOut]:
        labels = await session.scalars(select(Label).order_by(Label.name))
        return [LabelOut(id=label.id, name=label.name, color=label.color) for label in labels]

    @post("/", guards=[requires("settings", "read")], status_code=201)
    async def create(self, session: SessionDep, data: JSONBody[LabelIn]) -> LabelOut:
        label = await services.create_label(session, name=data.name, color=data.color)
        return LabelOut(id=label.id, name=label.name, color=label.color)

    @delete("/{label_id:uuid}", guards=[requires("settings", "read")], status_code=204)
    async def remove(self, session: SessionDep, label_id: FromPath[uuid.UUID]) -> None:
        await services.delete_label(session, label_id)


class CannedResponseController(Controller):
    path = "/api/inbox/canned-responses"
    tags = ["inbox"]  # noqa: RUF012

    @get("/", guards=[requires("whatsapp", "read")])
    async def list_responses(
        self, session: SessionDep, q: Annotated[str | None, QueryParameter(max_length=40)] = None
    ) -> list[CannedResponseOut]:
        return [_canned(r) for r in await services.list_canned_responses(session, q)]

    @post("/", guards=[requires("whatsapp", "write")], status_code=201)
    async def create(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[CannedResponseIn]
    ) -> CannedResponseOut:
        saved = await services.save_canned_response(
            session, request.user, response_id=None, shortcode=data.shortcode, content=data.content
        )
        return _canned(saved)

    @patch("/{response_id:uuid}", guards=[requires("whatsapp", "write")])
    async def update(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        response_id: FromPath[uuid.UUID],
        data: JSONBody[CannedResponseUpdate],
    ) -> CannedResponseOut:
        saved = await services.save_canned_response(
            session,
            request.user,
            response_id=response_id,
            shortcode=None if data.shortcode is UNSET else data.shortcode,
            content=None if data.content is UNSET else data.content,
        )
        return _canned(saved)

    @delete("/{response_id:uuid}", guards=[requires("whatsapp", "write")], status_code=204)
    async def remove(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, response_id: FromPath[uuid.UUID]
    ) -> None:
        await services.delete_canned_response(session, request.user, response_id)


def _canned(response: CannedResponse) -> CannedResponseOut:
    return CannedResponseOut(id=response.id, shortcode=response.shortcode, content=response.content)


class KnowledgeController(Controller):
    """The knowledge base: everyone in the inbox reads and searches it; managers and admins keep
    it. AI help grounds its suggestions in it."""

    path = "/api/inbox/knowledge"
    tags = ["inbox"]  # noqa: RUF012

    @get("/", guards=[requires("whatsapp", "read")])
    async def list_articles(
        self,
        session: SessionDep,
        q: Annotated[str | None, QueryParameter(max_length=500)] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ArticleOut]:
        """Every article, page by page; with `q`, the ones that answer it best (one page)."""
        if q and q.strip():
            found = await services.search_articles(session, q, limit=limit)
            return Page(items=[_article(item) for item in found], next_cursor=None)
        items, next_cursor = await services.list_articles(session, cursor=cursor, limit=limit)
        return Page(items=[_article(item) for item in items], next_cursor=next_cursor)

    @get("/{article_id:uuid}", guards=[requires("whatsapp", "read")])
    async def read(self, session: SessionDep, article_id: FromPath[uuid.UUID]) -> ArticleOut:
        return _article(await services.article(session, article_id))

    @post("/", guards=[requires("whatsapp", "write")], status_code=201)
    async def create(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[ArticleIn]
    ) -> ArticleOut:
        saved = await services.save_article(
            session,
            request.user,
            article_id=None,
            title=data.title,
            body=data.body,
            language=data.language,
            tags=data.tags,
        )
        return _article(saved)

    @patch("/{article_id:uuid}", guards=[requires("whatsapp", "write")])
    async def update(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        article_id: FromPath[uuid.UUID],
        data: JSONBody[ArticleUpdate],
    ) -> ArticleOut:
        saved = await services.save_article(
            session,
            request.user,
            article_id=article_id,
            title=None if data.title is UNSET else data.title,
            body=None if data.body is UNSET else data.body,
            language=None if data.language is UNSET else data.language,
            tags=None if data.tags is UNSET else data.tags,
        )
        return _article(saved)

    @delete("/{article_id:uuid}", guards=[requires("whatsapp", "write")], status_code=204)
    async def remove(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, article_id: FromPath[uuid.UUID]
    ) -> None:
        await services.delete_article(session, request.user, article_id)


def _article(item: KnowledgeArticle) -> ArticleOut:
    return ArticleOut(
        id=item.id,
        title=item.title,
        body=item.body,
        language=item.language,
        tags=list(item.tags or []),
        updated_at=item.updated_at,
        found_by_meaning=item.embedding is not None,
    )


@get("/api/inbox/search", guards=[requires("whatsapp", "read")], tags=["inbox"])
async def search(
    request: Request[CurrentUser, Any, Any],
    session: SessionDep,
    q: Annotated[str, QueryParameter(min_length=2, max_length=200)],
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Page[MessageOut]:
    """Messages whose text matches, in the conversations the caller may see, newest first."""
    messages, next_cursor = await services.search_messages(
        session, request.user, query=q, cursor=cursor, limit=limit
    )
    media = await services.attachments_of(session, [m.id for m in messages])
    return Page(
        items=[services.message_out(m, media.get(m.id, [])) for m in messages], next_cursor=next_cursor
    )


@get("/api/inbox/assistant", guards=[requires("settings", "read")], tags=["inbox"])
async def get_assistant_settings(session: SessionDep) -> AssistantSettingsOut:
    """The assistant that answers customers: on which channels, when, and when it hands off."""
    return await services.assistant_settings(session)


@put("/api/inbox/assistant", guards=[requires("settings", "write")], tags=["inbox"])
async def update_assistant_settings(
    session: SessionDep, data: JSONBody[AssistantSettingsIn]
) -> AssistantSettingsOut:
    return await services.update_assistant_settings(session, data)


@get("/api/inbox/assistant/report", guards=[requires("settings", "read")], tags=["inbox"])
async def assistant_report(
    session: SessionDep, days: Annotated[int, QueryParameter(ge=1, le=366)] = 30
) -> AssistantReport:
    """What the assistant did in the last `days` days: conversations answered, handed off and
    resolved without a hand-off, and its answers."""
    return await services.assistant_report(session, utcnow() - timedelta(days=days))


@get("/api/inbox/settings", guards=[requires("settings", "read")], tags=["inbox"])
async def get_inbox_settings(session: SessionDep) -> InboxSettingsOut:
    found = await services.inbox_settings(session)
    await session.commit()
    return InboxSettingsOut(auto_assign=found.auto_assign, agent_cap=found.agent_cap)


@patch("/api/inbox/settings", guards=[requires("settings", "write")], tags=["inbox"])
async def update_inbox_settings(session: SessionDep, data: JSONBody[InboxSettingsUpdate]) -> InboxSettingsOut:
    saved = await services.update_inbox_settings(
        session,
        auto_assign=None if data.auto_assign is UNSET else data.auto_assign,
        agent_cap=None if data.agent_cap is UNSET else data.agent_cap,
    )
    return InboxSettingsOut(auto_assign=saved.auto_assign, agent_cap=saved.agent_cap)


class WhatsAppInboxController(Controller):
    """The seed's `/api/whatsapp` endpoints, over the same channel-neutral inbox."""

    path = "/api/whatsapp"
    tags = ["whatsapp"]  # noqa: RUF012

    @post("/send", guards=[requires("whatsapp", "write")], status_code=201, errors=(404,))
    async def send(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[SendRequest]
    ) -> MessageOut:
        message = await services.reply(
            session, request.user, data.conversation_id, text=data.text, private=False, reply_to=data.reply_to
        )
        return await services.message_with_media(session, message)

    @post("/forward", guards=[requires("whatsapp", "write")], status_code=201, errors=(404,))
    async def forward(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[SeedForwardRequest]
    ) -> MessageOut:
        forwarded = await services.forward_message(
            session, request.user, data.message_id, data.conversation_id
        )
        return await services.message_with_media(session, forwarded)

    @put("/message", guards=[requires("whatsapp", "write")], errors=(404,))
    async def edit(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[SeedEditRequest]
    ) -> MessageOut:
        edited = await services.edit_message(session, request.user, data.message_id, data.text)
        return await services.message_with_media(session, edited)

    @delete("/message", guards=[requires("whatsapp", "write")], status_code=200, errors=(404,))
    async def remove(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        message_id: Annotated[uuid.UUID, QueryParameter()],
    ) -> MessageOut:
        return await services.message_with_media(
            session, await services.delete_message(session, request.user, message_id)
        )


ROUTES = [
    list_conversations,
    ConversationController,
    LabelController,
    CannedResponseController,
    KnowledgeController,
    search,
    get_inbox_settings,
    update_inbox_settings,
    get_assistant_settings,
    update_assistant_settings,
    assistant_report,
    WhatsAppInboxController,
]
