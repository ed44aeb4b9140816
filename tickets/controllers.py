"""HTTP for tickets (under /api/tickets): tickets, comments, assignment, the timeline, SLA policies,
business hours and the SLA report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post, put
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.auth import CurrentUser
from hub.controllers import Cursor, Limit, RuntimeDep, SessionDep
from hub.db import utcnow
from hub.errors import Forbidden
from hub.pagination import DEFAULT_LIMIT
from hub.permissions import module_on, requires
from hub.schemas import AIRequestOut, Page
from tickets import services
from tickets.schemas import (
    AssignRequest,
    ChangeOut,
    CommentIn,
    CommentOut,
    Kind,
    Priority,
    SlaPolicyIn,
    SlaPolicyOut,
    SlaReport,
    Status,
    TicketIn,
    TicketOut,
    TicketSettingsOut,
    TicketSettingsUpdate,
    TicketUpdate,
)
from tickets.services import ticket_out
from tickets.views import change_out, policy_out

READ, WRITE = requires("ticketing", "read"), requires("ticketing", "write")


async def managers_only(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """SLA policies, business hours and reports are the managers' and admins'."""
    checked = WRITE(connection, handler)
    if checked is not None:
        await checked
    if connection.user.role not in services.ROLES_ASSIGNING:
        raise Forbidden()


class TicketController(Controller):
    path = "/api/tickets"
    tags = ["tickets"]  # noqa: RUF012

    @get("/", guards=[READ])
    async def list_tickets(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        status: Annotated[list[Status] | None, QueryParameter()] = None,
        priority: Annotated[list[Priority] | None, QueryParameter()] = None,
        kind: Annotated[Kind | None, QueryParameter()] = None,
        assignee: Annotated[str | None, QueryParameter(max_length=40)] = None,
        customer: Annotated[uuid.UUID | None, QueryParameter()] = None,
        breached: Annotated[bool | None, QueryParameter()] = None,
        tag: Annotated[str | None, QueryParameter(max_length=50)] = None,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[TicketOut]:
        """Newest first. `assignee` is `me`, `unassigned` or a user's id; agents see their own only."""
        found, next_cursor = await services.list_tickets(
            session,
            request.user,
            statuses=list(status or []),
            priorities=list(priority or []),
            kind=kind,
            assignee=assignee,
            customer_id=customer,
            breached=breached,
            tag=tag,
            query=q,
            cursor=cursor,
            limit=limit,
        )
        return Page(items=[ticket_out(t) for t in found], next_cursor=next_cursor)

    @post("/", guards=[WRITE], status_code=201)
    async def create(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[TicketIn]
    ) -> TicketOut:
        return ticket_out(await services.create_ticket(session, request.user, data))

    @get("/{ticket_id:uuid}", guards=[READ])
    async def detail(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, ticket_id: FromPath[uuid.UUID]
    ) -> TicketOut:
        return ticket_out(await services.ticket_for_user(session, request.user, ticket_id))

    @patch("/{ticket_id:uuid}", guards=[WRITE])
    async def update(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        ticket_id: FromPath[uuid.UUID],
        data: JSONBody[TicketUpdate],
    ) -> TicketOut:
        return ticket_out(await services.update_ticket(session, request.user, ticket_id, data))

    @post("/{ticket_id:uuid}/assign", guards=[WRITE], status_code=200)
    async def assign(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        ticket_id: FromPath[uuid.UUID],
        data: JSONBody[AssignRequest],
    ) -> TicketOut:
        return ticket_out(await services.assign_ticket(session, request.user, ticket_id, data.assignee_id))

    @post("/{ticket_id:uuid}/comments", guards=[WRITE], status_code=201)
    async def comment(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        ticket_id: FromPath[uuid.UUID],
        data: JSONBody[CommentIn],
    ) -> CommentOut:
        """An internal comment, or with `public` a reply sent to the customer in the ticket's chat."""
        comment, media = await services.add_comment(session, request.user, ticket_id, data)
        return services.comment_out(comment, media)

    @get("/{ticket_id:uuid}/comments", guards=[READ])
    async def comments(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        ticket_id: FromPath[uuid.UUID],
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[CommentOut]:
        found, next_cursor = await services.list_comments(
            session, request.user, ticket_id, cursor=cursor, limit=limit
        )
        return Page(items=found, next_cursor=next_cursor)

    @post(
        "/{ticket_id:uuid}/ai/summarize", guards=[READ, module_on("ai")], status_code=202, errors=(402, 429)
    )
    async def summarize(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        ticket_id: FromPath[uuid.UUID],
    ) -> AIRequestOut:
        """The ticket and its comments in a few lines, in the reader's language, written to their
        sockets (`aiChunk`, `aiDone`)."""
        return AIRequestOut(
            request_id=await services.summarize_ticket(runtime, session, request.user, ticket_id)
        )

    @get("/{ticket_id:uuid}/timeline", guards=[READ])
    async def timeline(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        ticket_id: FromPath[uuid.UUID],
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ChangeOut]:
        """Every change, newest first: who, what and when."""
        found, next_cursor = await services.timeline(
            session, request.user, ticket_id, cursor=cursor, limit=limit
        )
        return Page(items=[change_out(c) for c in found], next_cursor=next_cursor)


class SlaController(Controller):
    path = "/api/tickets"
    tags = ["tickets"]  # noqa: RUF012

    @get("/sla-policies", guards=[READ])
    async def policies(self, session: SessionDep) -> list[SlaPolicyOut]:
        return [policy_out(p) for p in await services.list_policies(session)]

    @put("/sla-policies/{priority:str}", guards=[managers_only])
    async def set_policy(
        self, session: SessionDep, priority: FromPath[str], data: JSONBody[SlaPolicyIn]
    ) -> SlaPolicyOut:
        """The first-response and resolution targets, in minutes, of tickets of one priority."""
        return policy_out(await services.set_policy(session, priority, data))

    @delete("/sla-policies/{priority:str}", guards=[managers_only], status_code=204)
    async def remove_policy(self, session: SessionDep, priority: FromPath[str]) -> None:
        await services.delete_policy(session, priority)

    @get("/settings", guards=[READ])
    async def settings(self, session: SessionDep) -> TicketSettingsOut:
        return await services.settings_out(session)

    @patch("/settings", guards=[managers_only])
    async def update_settings(
        self, session: SessionDep, data: JSONBody[TicketSettingsUpdate]
    ) -> TicketSettingsOut:
        """Business hours, holidays and time zone for SLAs; keyword rules that suggest tickets."""
        return await services.update_settings(session, data)

    @get("/sla-report", guards=[managers_only])
    async def report(
        self,
        session: SessionDep,
        since: Annotated[datetime | None, QueryParameter()] = None,
        until: Annotated[datetime | None, QueryParameter()] = None,
    ) -> SlaReport:
        """Of the tickets opened in the period (the last 30 days unless given), the share that met
        each target, per priority and per agent."""
        until = _utc(until) or utcnow()
        return await services.sla_report(session, _utc(since) or until - timedelta(days=30), until)


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


ROUTES = [TicketController, SlaController]
