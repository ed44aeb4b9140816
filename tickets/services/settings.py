"""An organization's ticket settings: business hours, holidays and time zone (its business
calendar), suggestion rules, and the SLA policy of each priority."""

from __future__ import annotations

import uuid
from datetime import date, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import UNSET
from sqlalchemy import select

from hub.db import HubAsyncSession, organization_row
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.kept import Kept
from hub.models import Organization
from tickets.calendar import WEEKDAYS, BusinessCalendar
from tickets.models import SlaPolicy, TicketSettings
from tickets.schemas import (
    PRIORITIES,
    BusinessHours,
    SlaPolicyIn,
    SuggestionRule,
    TicketSettingsOut,
    TicketSettingsUpdate,
)

DEFAULT_SUGGESTION_RULES = [
    {
        "keywords": ["refund", "broken", "not working", "complaint", "problem", "damaged", "error"],
        "kind": "support",
        "priority": "normal",
    },
    {
        "keywords": ["مشكلة", "عطل", "لا يعمل", "شكوى", "استرجاع", "استرداد", "تالف", "خطأ"],
        "kind": "support",
        "priority": "normal",
    },
]


async def ticket_settings(session: HubAsyncSession) -> TicketSettings:
    """The organization's ticket settings, made with the defaults on first use."""
    return await organization_row(
        session,
        TicketSettings,
        time_zone=None,
        business_hours={},
        holidays=[],
        suggestion_rules=DEFAULT_SUGGESTION_RULES,
        create_automatically=False,
    )


async def _time_zone(session: HubAsyncSession, settings: TicketSettings) -> str:
    if settings.time_zone:
        return settings.time_zone
    return await session.scalar(select(Organization.time_zone)) or "UTC"


def calendar_of(
    time_zone: str, business_hours: dict[str, list[list[str]]], holidays: list[str]
) -> BusinessCalendar:
    def clock(text: str) -> time:
        return time.max if text == "24:00" else time.fromisoformat(text)

    return BusinessCalendar(
        time_zone=time_zone,
        hours={
            WEEKDAYS.index(day): [(clock(start), clock(end)) for start, end in periods]
            for day, periods in business_hours.items()
            if periods
        },
        holidays=frozenset(date.fromisoformat(d) for d in holidays),
    )


async def business_calendar(session: HubAsyncSession) -> BusinessCalendar:
    settings = await ticket_settings(session)
    return calendar_of(await _time_zone(session, settings), settings.business_hours, settings.holidays)


async def settings_out(session: HubAsyncSession) -> TicketSettingsOut:
    settings = await ticket_settings(session)
    return TicketSettingsOut(
        time_zone=await _time_zone(session, settings),
        business_hours=msgspec.convert(settings.business_hours, BusinessHours),
        holidays=[date.fromisoformat(d) for d in settings.holidays],
        suggestion_rules=[msgspec.convert(rule, SuggestionRule) for rule in settings.suggestion_rules],
        create_automatically=settings.create_automatically,
    )


async def update_settings(session: HubAsyncSession, changes: TicketSettingsUpdate) -> TicketSettingsOut:
    settings = await ticket_settings(session)
    if changes.time_zone is not UNSET:
        if changes.time_zone is not None:
            try:
                ZoneInfo(changes.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InvalidInput(N_("This is not a known time zone."), field="time_zone") from None
        settings.time_zone = changes.time_zone
    if changes.business_hours is not UNSET:
        hours = msgspec.to_builtins(changes.business_hours)
        for day, periods in hours.items():
            for start, end in periods:
                if end <= start:
                    raise InvalidInput(
                        N_("Each period must end after it starts."), field=f"business_hours.{day}"
                    )
        settings.business_hours = {day: periods for day, periods in hours.items() if periods}
    if changes.holidays is not UNSET:
        settings.holidays = sorted({d.isoformat() for d in changes.holidays})
    if changes.suggestion_rules is not UNSET:
        settings.suggestion_rules = msgspec.to_builtins(changes.suggestion_rules)
    if changes.create_automatically is not UNSET:
        settings.create_automatically = changes.create_automatically
    await session.commit()
    kept_suggestion_rules.forget(settings.organization_id)  # this process sees the change at once
    return await settings_out(session)


async def list_policies(session: HubAsyncSession) -> list[SlaPolicy]:
    policies = list(await session.scalars(select(SlaPolicy)))
    return sorted(policies, key=lambda p: PRIORITIES.index(p.priority))


async def set_policy(session: HubAsyncSession, priority: str, data: SlaPolicyIn) -> SlaPolicy:
    """Targets apply to tickets opened (or given this priority) from now on."""
    if priority not in PRIORITIES:
        raise NotFound()
    policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.priority == priority))
    if policy is None:
        policy = SlaPolicy(priority=priority, first_response_minutes=1, resolution_minutes=1)
        session.add(policy)
    policy.first_response_minutes = data.first_response_minutes
    policy.resolution_minutes = data.resolution_minutes
    policy.business_hours_only = data.business_hours_only
    await session.commit()
    return policy


async def delete_policy(session: HubAsyncSession, priority: str) -> None:
    policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.priority == priority))
    if policy is None:
        raise NotFound()
    await session.delete(policy)
    await session.commit()


# Each process keeps an organization's rules for a short while: every inbound message is
# matched against them, and reading them each time would cost every message two queries.
# (rules, create automatically), or None where ticketing is switched off; kept per organization.
kept_suggestion_rules: Kept[uuid.UUID, tuple[tuple[list[dict[str, Any]], bool] | None]] = Kept(seconds=30.0)
