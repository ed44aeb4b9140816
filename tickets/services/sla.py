"""SLA clocks: each target counts business time, pauses while the customer is awaited or the
ticket is resolved, warns at 80% and breaches at 100%, once, across restarts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update

from hub.db import HubAsyncSession, utcnow
from hub.runtime import Runtime
from hub.tasks import schedule
from tickets.calendar import BusinessCalendar
from tickets.events import SlaBreached, SlaWarning
from tickets.models import MET_AT, TARGETS, SlaPolicy, Ticket
from tickets.services.access import CLOCK_RUNS, WARN_SHARE, note_change, push_to_audience
from tickets.services.settings import business_calendar


def met_in_time(ticket: Ticket, target: str) -> bool:
    return getattr(ticket, f"{target}_breached_at") is None


def _target_seconds(policy: SlaPolicy, target: str) -> float:
    return 60.0 * (policy.first_response_minutes if target == "first_response" else policy.resolution_minutes)


async def _policy_and_calendar(
    session: HubAsyncSession, ticket: Ticket
) -> tuple[SlaPolicy | None, BusinessCalendar]:
    policy = await session.scalar(select(SlaPolicy).where(SlaPolicy.priority == ticket.priority))
    calendar = await business_calendar(session)
    if policy is not None and not policy.business_hours_only:
        calendar = BusinessCalendar(time_zone=calendar.time_zone)  # round the clock
    return policy, calendar


async def start_clocks(session: HubAsyncSession, ticket: Ticket, now: datetime) -> None:
    """Due times from the ticket's priority's policy, counted from now."""
    policy, calendar = await _policy_and_calendar(session, ticket)
    ticket.sla_policy_id = policy.id if policy else None
    for target in TARGETS:
        if policy is None:
            _clear_target(ticket, target)
        else:
            await _run_target(session, ticket, target, calendar, now, _target_seconds(policy, target), policy)


async def restart_clocks(session: HubAsyncSession, ticket: Ticket, now: datetime) -> None:
    """A new priority: its targets less the business time the ticket has used already."""
    policy, calendar = await _policy_and_calendar(session, ticket)
    used = {target: await _used_seconds(session, ticket, target, calendar, now) for target in TARGETS}
    ticket.sla_policy_id = policy.id if policy else None
    for target in TARGETS:
        if ticket.met_at(target) is not None or getattr(ticket, f"{target}_breached_at") is not None:
            continue  # decided already
        if policy is None:
            _clear_target(ticket, target)
            continue
        left = _target_seconds(policy, target) - used[target]
        if ticket.status in CLOCK_RUNS:
            await _run_target(session, ticket, target, calendar, now, left, policy)
        else:  # paused: keep what is left for when the clock runs again
            setattr(ticket, f"{target}_left", max(left, 0.0))


async def _used_seconds(
    session: HubAsyncSession, ticket: Ticket, target: str, calendar: BusinessCalendar, now: datetime
) -> float:
    old = await session.get(SlaPolicy, ticket.sla_policy_id) if ticket.sla_policy_id else None
    left = getattr(ticket, f"{target}_left")
    due = getattr(ticket, f"{target}_due_at")
    if old is not None and (left is not None or due is not None):
        remaining = left if left is not None else calendar.seconds_between(now, due)
        return max(_target_seconds(old, target) - remaining, 0.0)
    return calendar.seconds_between(ticket.created_at, now)


def _clear_target(ticket: Ticket, target: str) -> None:
    for suffix in ("due_at", "warn_at", "left"):
        setattr(ticket, f"{target}_{suffix}", None)


async def _run_target(
    session: HubAsyncSession,
    ticket: Ticket,
    target: str,
    calendar: BusinessCalendar,
    now: datetime,
    left: float,
    policy: SlaPolicy | None,
) -> None:
    """Set the target's clock running with `left` business seconds to go, and book its checks."""
    due = calendar.add(now, max(left, 0.0))
    setattr(ticket, f"{target}_due_at", due)
    setattr(ticket, f"{target}_left", None)
    warn = None
    if policy is not None and getattr(ticket, f"{target}_warned_at") is None:
        before_due = (1 - WARN_SHARE) * _target_seconds(policy, target)
        if left > before_due:
            warn = calendar.add(now, left - before_due)
    setattr(ticket, f"{target}_warn_at", warn)
    await session.flush()
    for stage, moment in (("warn", warn), ("breach", due)):
        if moment is not None:
            await schedule(
                session,
                "tickets.check_sla",
                moment,
                key=f"sla:{ticket.id}:{target}:{stage}",
                organization_id=str(ticket.organization_id),
                ticket_id=str(ticket.id),
            )


async def pause_clocks(session: HubAsyncSession, ticket: Ticket, now: datetime) -> None:
    """Stop the running clocks and keep the business time left; a target already overdue
    breaches now, before its clock stops."""
    await fire_due(session, ticket, now)
    _policy, calendar = await _policy_and_calendar(session, ticket)
    for target in TARGETS:
        due = getattr(ticket, f"{target}_due_at")
        if due is None or not ticket.running(target):
            continue
        setattr(ticket, f"{target}_left", calendar.seconds_between(now, due))
        setattr(ticket, f"{target}_warn_at", None)


async def resume_clocks(session: HubAsyncSession, ticket: Ticket, now: datetime) -> None:
    policy, calendar = await _policy_and_calendar(session, ticket)
    for target in TARGETS:
        left = getattr(ticket, f"{target}_left")
        if left is None or ticket.met_at(target) is not None:
            continue
        await _run_target(session, ticket, target, calendar, now, left, policy)


async def fire_due(session: HubAsyncSession, ticket: Ticket, now: datetime) -> list[str]:
    """Warn and breach what is due on this ticket, each once: the stamp is set only where it is
    still empty, in the database, so a check that runs twice (or twice at once) fires once."""
    fired = []
    for target in TARGETS:
        running = [
            Ticket.id == ticket.id,
            getattr(Ticket, f"{target}_left").is_(None),
            getattr(Ticket, MET_AT[target]).is_(None),
            getattr(Ticket, f"{target}_breached_at").is_(None),
        ]
        due_column = getattr(Ticket, f"{target}_due_at")
        for stage, moment_column, stamp, extra in (
            # No "at risk" for what is already overdue: it breaches instead.
            ("warning", getattr(Ticket, f"{target}_warn_at"), f"{target}_warned_at", due_column > now),
            ("breach", due_column, f"{target}_breached_at", due_column <= now),
        ):
            result = await session.execute(
                update(Ticket)
                .where(*running, extra, moment_column <= now, getattr(Ticket, stamp).is_(None))
                .values({stamp: now})
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:  # type: ignore[attr-defined]  # an UPDATE's result has rowcount; the stubs type it as Result
                setattr(ticket, stamp, now)
                fired.append(f"{target}:{stage}")
                due = getattr(ticket, f"{target}_due_at")
                kind = "sla_warning" if stage == "warning" else "sla_breached"
                note_change(
                    session, ticket, None, kind, target=target, due_at=due.isoformat() if due else None
                )
                fired_event = SlaWarning if stage == "warning" else SlaBreached
                push_to_audience(
                    session,
                    ticket,
                    fired_event(ticket_id=ticket.id, number=ticket.number, target=target, due_at=due),
                )
    return fired


async def check_sla(runtime: Runtime, organization_id: uuid.UUID, ticket_id: uuid.UUID) -> list[str]:
    async with runtime.db.session(organization_id) as session:
        ticket = await session.get(Ticket, ticket_id)
        if ticket is None:
            return []
        fired = await fire_due(session, ticket, utcnow())
        await session.commit()
        return fired


async def sweep_sla(runtime: Runtime) -> int:
    """Fire whatever is due and not yet fired, in every organization: the timed checks are the
    punctual way, this is the safety net for a check lost with a process that died mid-way."""
    async with runtime.db.system_session() as session:
        found = list(
            (
                await session.execute(
                    select(Ticket.organization_id, Ticket.id)
                    .where(Ticket.sla_check_at <= utcnow())
                    .limit(1000)
                )
            ).all()
        )
    for organization_id, ticket_id in found:
        await check_sla(runtime, organization_id, ticket_id)
    return len(found)
