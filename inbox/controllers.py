"""HTTP for the shared inbox (channel-neutral, under /api/inbox)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy import select

from hub.auth import CurrentUser
from hub.controllers import Cursor, Limit, SessionDep
from hub.errors import NotFound
from hub.pagination import DEFAULT_LIMIT, paginate
from hub.permissions import requires
from hub.schemas import Page
from inbox import services
from inbox.models import Message
from inbox.schemas import (
    AssignRequest,
    ConversationOut,
    ConversationUpdate,
    EditRequest,
    ForwardRequest,
    MessageOut,
    ReplyRequest,
    SeedEditRequest,
    SeedForwardRequest,
    SendRequest,
    Status,
)


class ConversationController(Controller):
    path = "/api/inbox/conversations"
    tags = ["inbox"]  # noqa: RUF012

    @get("/", guards=[requires("whatsapp", "read")])
    async def list_conversations(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        status: Annotated[Status | None, QueryParameter()] = None,
        assignee: Annotated[str | None, QueryParameter(max_length=64)] = None,
        channel: Annotated[uuid.UUID | None, QueryParameter()] = None,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ConversationOut]:
        rows, next_cursor = await services.list_conversations(
            session,
            request.user,
            status=status,
            assignee=assignee,
            channel_id=channel,
            query=q,
            cursor=cursor,
            limit=limit,
        )
        return Page(
            items=[services.conversation_out(c, customer) for c, customer in rows], next_cursor=next_cursor
        )

    @get("/{conversation_id:uuid}", guards=[requires("whatsapp", "read")])
    async def detail(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
    ) -> ConversationOut:
        conversation, customer = await services.conversation_for_user(session, request.user, conversation_id)
        return services.conversation_out(conversation, customer)

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
        return services.conversation_out(conversation, customer)

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
        return services.conversation_out(conversation, customer)

    @post("/{conversation_id:uuid}/read", guards=[requires("whatsapp", "read")], status_code=200)
    async def read(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        conversation_id: FromPath[uuid.UUID],
    ) -> ConversationOut:
        await services.mark_read(session, request.user, conversation_id)
        conversation, customer = await services.conversation_for_user(session, request.user, conversation_id)
        return services.conversation_out(conversation, customer)

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


async def _in_conversation(session: SessionDep, message_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
    belongs = await session.scalar(
        select(Message.id).where(Message.id == message_id, Message.conversation_id == conversation_id)
    )
    if belongs is None:
        raise NotFound()


class WhatsAppInboxController(Controller):
    """The seed's `/api/whatsapp` endpoints, over the same channel-neutral inbox."""

    path = "/api/whatsapp"
    tags = ["whatsapp"]  # noqa: RUF012

    @get("/conversations", guards=[requires("whatsapp", "read")])
    async def conversations(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        status: Annotated[Status | None, QueryParameter()] = None,
        assignee: Annotated[str | None, QueryParameter(max_length=64)] = None,
        channel: Annotated[uuid.UUID | None, QueryParameter()] = None,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ConversationOut]:
        rows, next_cursor = await services.list_conversations(
            session,
            request.user,
            status=status,
            assignee=assignee,
            channel_id=channel,
            query=q,
            cursor=cursor,
            limit=limit,
        )
        return Page(
            items=[services.conversation_out(c, customer) for c, customer in rows], next_cursor=next_cursor
        )

    @post("/send", guards=[requires("whatsapp", "write")], status_code=201)
    async def send(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[SendRequest]
    ) -> MessageOut:
        message = await services.reply(
            session, request.user, data.conversation_id, text=data.text, private=False, reply_to=data.reply_to
        )
        return await services.message_with_media(session, message)

    @post("/forward", guards=[requires("whatsapp", "write")], status_code=201)
    async def forward(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[SeedForwardRequest]
    ) -> MessageOut:
        forwarded = await services.forward_message(
            session, request.user, data.message_id, data.conversation_id
        )
        return await services.message_with_media(session, forwarded)

    @put("/message", guards=[requires("whatsapp", "write")])
    async def edit(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[SeedEditRequest]
    ) -> MessageOut:
        edited = await services.edit_message(session, request.user, data.message_id, data.text)
        return await services.message_with_media(session, edited)

    @delete("/message", guards=[requires("whatsapp", "write")], status_code=200)
    async def remove(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        message_id: Annotated[uuid.UUID, QueryParameter()],
    ) -> MessageOut:
        return await services.message_with_media(
            session, await services.delete_message(session, request.user, message_id)
        )


ROUTES = [ConversationController, WhatsAppInboxController]
