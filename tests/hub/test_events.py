"""Events: published only after commit, handled at least once through the outbox, even across a crash."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hub import events
from hub.models import OutboxEntry
from tests.conftest import PASSWORD, RunningHub, child_environment, eventually, register, unique_email
from tests.hub import recorders

ROOT = Path(__file__).resolve().parents[2]


async def test_capture_sees_committed_events_only(hub: RunningHub) -> None:
    with events.capture_events() as captured:
        organization = await register(hub)
        async with hub.client() as client:
            failed = await client.post(
                "/api/auth/register",
                json={
                    "organization_name": "X",
                    "full_name": "Y",
                    "email": organization.admin.email,
                    "password": PASSWORD,
                },
            )
        assert failed.status_code == 409
        async with hub.runtime.db.session(organization.id) as session:
            await events.publish(
                session, recorders.Pinged(organization_id=organization.id, note="rolled back")
            )
            await session.rollback()
    registered = [e for e in captured if isinstance(e, events.OrganizationRegistered)]
    assert [e.organization_id for e in registered] == [organization.id]
    assert registered[0].admin_id == organization.admin.user_id
    assert not any(isinstance(e, recorders.Pinged) for e in captured)


async def test_joining_and_role_change_publish_typed_events(
    hub: RunningHub, captured_events: list[events.Event]
) -> None:
    organization = await register(hub)
    async with hub.client(organization.admin.token) as client:
        invited = await client.post("/api/users/invite", json={"email": unique_email(), "role": "agent"})
    token = invited.json()["invitation_url"].split("token=")[1]
    captured_events.clear()
    async with hub.client() as client:
        joined = await client.post(
            "/api/auth/accept-invitation", json={"token": token, "full_name": "Agent", "password": PASSWORD}
        )
    user_id = uuid.UUID(joined.json()["user"]["id"])
    async with hub.client(organization.admin.token) as client:
        await client.patch(f"/api/users/{user_id}/role", json={"role": "member"})
    # Only this organization's: the process's sweeps publish other organizations' events meanwhile.
    assert [event for event in captured_events if event.organization_id == organization.id] == [
        events.UserJoined(organization_id=organization.id, user_id=user_id, role="agent"),
        events.UserRoleChanged(
            organization_id=organization.id, user_id=user_id, old_role="agent", new_role="member"
        ),
    ]


async def test_handler_runs_once_the_transaction_commits(hub: RunningHub) -> None:
    organization = await register(hub)
    note = f"plain-{secrets.token_hex(3)}"
    async with hub.runtime.db.session(organization.id) as session:
        await events.publish(session, recorders.Pinged(organization_id=organization.id, note=note))
        await asyncio.sleep(0.2)
        assert note not in recorders.HANDLED  # nothing before the commit
        await session.commit()
    await eventually(lambda: note in recorders.HANDLED)

    async def outbox_is_empty() -> bool:
        async with hub.runtime.db.session(organization.id) as session:
            return await session.scalar(select(func.count()).select_from(OutboxEntry)) == 0

    await eventually(outbox_is_empty)  # a handled event leaves nothing behind


async def test_a_failing_handler_is_retried_until_it_succeeds(hub: RunningHub) -> None:
    organization = await register(hub)
    note = f"flaky-{secrets.token_hex(3)}"
    recorders.FAIL_ONCE.add(note)
    async with hub.runtime.db.session(organization.id) as session:
        await events.publish(session, recorders.Pinged(organization_id=organization.id, note=note))
        await session.commit()
    await eventually(lambda: note not in recorders.FAIL_ONCE)  # first delivery happened and failed
    async with hub.runtime.db.session(organization.id) as session:
        entry = await session.scalar(select(OutboxEntry).where(OutboxEntry.handler == "tests.record_ping"))
    assert entry is not None
    assert entry.attempts == 1
    assert "the first delivery fails" in (entry.last_error or "")
    # Once the backoff has passed, a sweep retries it: this one, or the one the embedded hub's
    # scheduler runs every 10 s if it came first (then this one finds nothing left to do).
    await asyncio.sleep(2.2)
    await events.sweep()
    await eventually(lambda: note in recorders.HANDLED)
    assert recorders.HANDLED.count(note) == 1


async def test_an_event_survives_a_crash_between_commit_and_hand_off(hub: RunningHub) -> None:
    organization = await register(hub)
    note = f"crash-{secrets.token_hex(3)}"
    environment = child_environment(hub.settings, HUB_EVENT_CLAIM_SECONDS="2")
    environment.pop("REDIS_URL", None)  # the publisher needs only the database
    process = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.hub.crash_after_commit", str(organization.id), note],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 17, process.stderr
    async with hub.runtime.db.session(organization.id) as session:
        pending = await session.scalar(select(func.count()).select_from(OutboxEntry))
    assert pending == 1  # committed, never handed off
    # This process never saw the event; its sweep finds the row once the dead publisher's claim lapses.
    await eventually(lambda: note in recorders.HANDLED, within=25)
    assert recorders.HANDLED.count(note) == 1


async def test_publishing_an_unregistered_event_type_is_a_programming_error(hub: RunningHub) -> None:
    class Stray(events.Event, frozen=True, kw_only=True):
        name = "tests.stray"

    organization = await register(hub)
    async with hub.runtime.db.session(organization.id) as session:
        with pytest.raises(ValueError, match="not registered"):
            await events.publish(session, Stray(organization_id=organization.id))
