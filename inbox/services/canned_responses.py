"""Canned responses: the team's saved answers, found by their shortcode."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub.auth import CurrentUser
from hub.db import HubAsyncSession
from hub.errors import Conflict, Forbidden, NotFound
from hub.i18n import N_
from inbox.models import CannedResponse

log = structlog.get_logger(__name__)


def _manages_inbox(user: CurrentUser) -> None:
    if user.role not in ("admin", "manager"):
        raise Forbidden()


async def list_canned_responses(session: HubAsyncSession, prefix: str | None) -> list[CannedResponse]:
    statement = select(CannedResponse).order_by(CannedResponse.shortcode)
    if prefix:
        statement = statement.where(
            CannedResponse.shortcode.startswith(prefix.strip().lstrip("/"), autoescape=True)
        )
    return list(await session.scalars(statement.limit(200)))


async def save_canned_response(
    session: HubAsyncSession,
    user: CurrentUser,
    *,
    response_id: uuid.UUID | None,
    shortcode: str | None,
    content: str | None,
) -> CannedResponse:
    _manages_inbox(user)
    if response_id is None:
        response = CannedResponse(shortcode=shortcode or "", content=content or "")
        session.add(response)
    else:
        found = await session.get(CannedResponse, response_id)
        if found is None:
            raise NotFound()
        response = found
        if shortcode is not None:
            response.shortcode = shortcode
        if content is not None:
            response.content = content
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(N_("This shortcode is already used."), field="shortcode") from None
    await session.commit()
    return response


async def delete_canned_response(session: HubAsyncSession, user: CurrentUser, response_id: uuid.UUID) -> None:
    _manages_inbox(user)
    response = await session.get(CannedResponse, response_id)
    if response is None:
        raise NotFound()
    await session.delete(response)
    await session.commit()


async def canned_responses_about(
    session: HubAsyncSession, question: str, *, limit: int
) -> list[CannedResponse]:
    """The team's saved answers sharing the most words with a question (none sharing any are
    left out), for AI help to ground a suggestion in."""
    from inbox.services.knowledge import question_words, search_words

    wanted = set(question_words(question))
    if not wanted:
        return []
    scored = []
    for response in await session.scalars(select(CannedResponse).limit(500)):
        shared = len(wanted & set(search_words(f"{response.shortcode} {response.content}")))
        if shared:
            scored.append((-shared, response.shortcode, response))
    return [response for *_rank, response in sorted(scored, key=lambda row: row[:2])[:limit]]
