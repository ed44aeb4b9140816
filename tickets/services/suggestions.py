"""Suggested tickets: an inbound message matching one of the organization's rules suggests a
ticket to whoever holds the chat, or opens one when the organization wants that."""

from __future__ import annotations

import uuid
from typing import Any

from hub.audience import assigners_of, people
from hub.i18n import find_keyword
from hub.models import User
from hub.permissions import can, module_switched_on
from hub.realtime import push
from hub.runtime import Runtime
from tickets.events import TicketSuggested
from tickets.models import Ticket
from tickets.schemas import TicketIn
from tickets.services.settings import kept_suggestion_rules, ticket_settings
from tickets.services.tickets import create_ticket


async def _suggestion_setup(
    runtime: Runtime, organization_id: uuid.UUID
) -> tuple[list[dict[str, Any]], bool] | None:
    kept = kept_suggestion_rules.get(organization_id)
    if kept is not None:
        return kept[0]
    async with runtime.db.session(organization_id) as session:
        enabled = await module_switched_on(session, "ticketing")
        settings = await ticket_settings(session)
        setup = None if not enabled else (list(settings.suggestion_rules), settings.create_automatically)
        await session.commit()
    kept_suggestion_rules.put(organization_id, (setup,))
    return setup


def matching_rule(rules: list[dict[str, Any]], text: str) -> tuple[dict[str, Any], str] | None:
    """The first rule one of whose keywords the text holds, and that keyword."""
    for rule in rules:
        keyword = find_keyword(text, rule.get("keywords", []))
        if keyword is not None:
            return rule, keyword
    return None


async def suggest_ticket(
    runtime: Runtime,
    *,
    organization_id: uuid.UUID,
    message_id: uuid.UUID,
    conversation_id: uuid.UUID,
    customer_id: uuid.UUID,
    assignee_id: uuid.UUID | None,
    text: str | None,
) -> Ticket | None:
    """A message that matches a rule suggests a ticket to whoever handles the chat, or opens one
    when the organization said so."""
    if not text:
        return None
    setup = await _suggestion_setup(runtime, organization_id)
    if setup is None:
        return None  # the ticketing module is switched off
    rules, automatic = setup
    found = matching_rule(rules, text)
    if found is None:
        return None
    async with runtime.db.session(organization_id) as session:
        rule, keyword = found
        title = " ".join(text.split())[:80]
        draft = TicketIn(
            title=title,
            description=text[:20000],
            kind=rule.get("kind", "support"),
            priority=rule.get("priority", "normal"),
            customer_id=customer_id,
            conversation_id=conversation_id,
        )
        if automatic:
            assignee = await session.get(User, assignee_id) if assignee_id else None
            if assignee is not None and assignee.is_active and can(assignee.role, "ticketing", "write"):
                draft.assignee_id = assignee.id
            return await create_ticket(session, None, draft, source_message_id=message_id)
        push(
            session,
            TicketSuggested(chat_id=conversation_id, message_id=message_id, keyword=keyword, draft=draft),
            people([assignee_id]) if assignee_id else assigners_of("ticketing"),
        )
        await session.commit()
        return None
