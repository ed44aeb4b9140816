"""SLA targets: due times in business hours, pauses, warnings and breaches that fire once (across
a restart too), and the report of targets met."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, update

from hub.db import utcnow
from hub.models import ScheduledJob
from tests.conftest import Organization, RunningHub, eventually, make_settings, register, start_hub
from tests.helpers.channels import Receiver, make_channel
from tests.helpers.sockets import connect
from tests.helpers.tickets import fast_forward
from tickets.models import Ticket


def moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


async def test_due_times_follow_business_hours_holidays_and_pauses(
    hub: RunningHub, organization: Organization
) -> None:
    now = datetime.now(UTC)
    # Open one hour a day, starting two whole hours from now: the clock cannot have started yet.
    opens = (now.hour + 2) % 24
    closes = "24:00" if opens == 23 else f"{opens + 1:02d}:00"
    window = [[f"{opens:02d}:00", closes]]
    start = now.replace(hour=opens, minute=0, second=0, microsecond=0)
    if start <= now:
        start += timedelta(days=1)
    async with hub.client(organization.admin.token, language="en") as client:
        settings = await client.patch(
            "/api/tickets/settings",
            json={
                "time_zone": "UTC",
                "business_hours": dict.fromkeys(("sun", "mon", "tue", "wed", "thu", "fri", "sat"), window),
            },
        )
        assert settings.status_code == 200, settings.text
        policy = await client.put(
            "/api/tickets/sla-policies/high", json={"first_response_minutes": 30, "resolution_minutes": 60}
        )
        assert policy.json() == {
            "priority": "high",
            "first_response_minutes": 30,
            "resolution_minutes": 60,
            "business_hours_only": True,
        }
        ticket = (await client.post("/api/tickets", json={"title": "Down", "priority": "high"})).json()
        assert moment(ticket["first_response"]["due_at"]) == start + timedelta(minutes=30)
        assert moment(ticket["resolution"]["due_at"]) == start + timedelta(minutes=60)  # the window's end
        path = f"/api/tickets/{ticket['id']}"

        # Waiting on the customer stops both clocks with all their time left (none has run yet).
        waiting = (await client.patch(path, json={"status": "waiting_on_customer"})).json()
        assert waiting["first_response"]["left_seconds"] == 1800
        assert waiting["resolution"]["left_seconds"] == 3600
        resumed = (await client.patch(path, json={"status": "open"})).json()
        assert resumed["first_response"]["left_seconds"] is None
        assert moment(resumed["first_response"]["due_at"]) == start + timedelta(minutes=30)

        # A priority without a policy has no targets.
        assert (await client.patch(path, json={"priority": "low"})).json()["first_response"] is None

        # The first opening is a holiday: the targets move to the next day's window.
        await client.patch("/api/tickets/settings", json={"holidays": [start.date().isoformat()]})
        later = (await client.post("/api/tickets", json={"title": "Later", "priority": "high"})).json()
        assert moment(later["first_response"]["due_at"]) == start + timedelta(days=1, minutes=30)

        # Round the clock: minutes of plain time from when the ticket was opened.
        await client.put(
            "/api/tickets/sla-policies/urgent",
            json={"first_response_minutes": 15, "resolution_minutes": 240, "business_hours_only": False},
        )
        urgent = (await client.post("/api/tickets", json={"title": "Fire", "priority": "urgent"})).json()
        opened = moment(urgent["created_at"])
        assert opened is not None
        assert moment(urgent["first_response"]["due_at"]) == opened + timedelta(minutes=15)
        assert moment(urgent["resolution"]["due_at"]) == opened + timedelta(hours=4)
        # The first public reply meets the first-response target.
        listed = (await client.get("/api/tickets/sla-policies")).json()
        assert [p["priority"] for p in listed] == ["high", "urgent"]


async def timeline_kinds(client: Any, ticket_id: str) -> list[str]:
    return [c["kind"] for c in (await client.get(f"/api/tickets/{ticket_id}/timeline")).json()["items"]]


async def test_a_breach_fires_once_across_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = await start_hub(settings, kind="sqlite")
    organization = await register(first)
    async with first.client(organization.admin.token) as client:
        await client.put(
            "/api/tickets/sla-policies/urgent",
            json={"first_response_minutes": 60, "resolution_minutes": 600, "business_hours_only": False},
        )
        ticket = (await client.post("/api/tickets", json={"title": "Outage", "priority": "urgent"})).json()
    soon = utcnow()
    await fast_forward(
        first,
        organization.id,
        ticket["id"],
        first_response_warn_at=soon + timedelta(seconds=4),
        first_response_due_at=soon + timedelta(seconds=6),
    )
    await first.stop()  # down before either is due

    second = await start_hub(settings, kind="sqlite")
    try:
        watcher = await connect(second, organization.admin.token)
        async with second.client(organization.admin.token) as client:
            await eventually(lambda: watcher.named("slaBreached"), within=20)
            assert [w["target"] for w in watcher.named("slaWarning")] == ["first_response"]
            assert watcher.named("slaBreached")[0] == {
                "ticketId": ticket["id"],
                "number": 1,
                "target": "first_response",
                "dueAt": watcher.named("slaBreached")[0]["dueAt"],
            }
            # The check delivered again, and the sweep, change nothing: it fired once.
            for _ in range(2):
                await second.runtime.broker.find_task("tickets.check_sla").kiq(
                    organization_id=str(organization.id), ticket_id=ticket["id"]
                )
            await second.runtime.broker.find_task("tickets.sweep_sla").kiq()
            await asyncio.sleep(3)  # and past another scheduler refresh
            kinds = await timeline_kinds(client, ticket["id"])
            assert kinds.count("sla_breached") == 1
            assert kinds.count("sla_warning") == 1
            assert len(watcher.named("slaBreached")) == 1
            shown = (await client.get(f"/api/tickets/{ticket['id']}")).json()
            assert shown["first_response"]["breached_at"] is not None
            assert shown["resolution"]["breached_at"] is None
            breached = (await client.get("/api/tickets", params={"breached": "true"})).json()["items"]
            assert [t["id"] for t in breached] == [ticket["id"]]
        await watcher.client.disconnect()
    finally:
        await second.stop()


async def test_an_overdue_target_breaches_when_the_clock_stops_even_before_its_check(
    hub: RunningHub, organization: Organization
) -> None:
    async with hub.client(organization.admin.token) as client:
        await client.put(
            "/api/tickets/sla-policies/normal",
            json={"first_response_minutes": 60, "resolution_minutes": 120, "business_hours_only": False},
        )
        ticket = (await client.post("/api/tickets", json={"title": "Slow"})).json()
        async with hub.runtime.db.session(organization.id) as session:  # overdue, its check not yet run
            await session.execute(
                update(Ticket)
                .where(Ticket.id == uuid.UUID(ticket["id"]))
                .values(resolution_due_at=utcnow() - timedelta(seconds=1))
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        resolved = (await client.patch(f"/api/tickets/{ticket['id']}", json={"status": "resolved"})).json()
        assert resolved["resolution"]["breached_at"] is not None
        assert resolved["first_response"]["breached_at"] is None
        assert resolved["first_response"]["left_seconds"] > 3500  # paused, not breached
        assert "sla_breached" in await timeline_kinds(client, ticket["id"])


async def test_the_report_shows_the_share_met_per_priority_and_agent(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    agent = organization.members["agent"]
    async with hub.client(organization.admin.token) as client:
        await client.put(
            "/api/tickets/sla-policies/high",
            json={"first_response_minutes": 60, "resolution_minutes": 600, "business_hours_only": False},
        )
        tickets = []
        for number in range(3):
            stored = (
                await channel.send(
                    external_id=f"r-{number}", **{"from": f"+96656222000{number}"}, text="help"
                )
            ).json()
            body = {
                "title": f"T{number}",
                "priority": "high",
                "conversation_id": stored["conversation_id"],
                "assignee_id": str(agent.user_id if number < 2 else organization.admin.user_id),
            }
            tickets.append((await client.post("/api/tickets", json=body)).json())
        # T0 is answered in time; T1's first response is missed; T2 is still undecided.
        answered = await client.post(
            f"/api/tickets/{tickets[0]['id']}/comments", json={"text": "On it", "public": True}
        )
        assert answered.status_code == 201
        await fast_forward(
            hub, organization.id, tickets[1]["id"], first_response_due_at=utcnow() - timedelta(seconds=1)
        )
        await hub.runtime.broker.find_task("tickets.check_sla").kiq(
            organization_id=str(organization.id), ticket_id=tickets[1]["id"]
        )

        async def report() -> dict[str, Any] | None:
            found = (await client.get("/api/tickets/sla-report")).json()
            return found if found["by_priority"][0]["first_response"]["breached"] == 1 else None

        found = await eventually(report)
        assert found["by_priority"] == [
            {
                "priority": "high",
                "assignee_id": None,
                "first_response": {"tickets": 3, "met": 1, "breached": 1, "share_met": 0.5},
                "resolution": {"tickets": 3, "met": 0, "breached": 0, "share_met": None},
            }
        ]
        by_agent = {row["assignee_id"]: row["first_response"] for row in found["by_agent"]}
        assert by_agent == {
            str(agent.user_id): {"tickets": 2, "met": 1, "breached": 1, "share_met": 0.5},
            str(organization.admin.user_id): {"tickets": 1, "met": 0, "breached": 0, "share_met": None},
        }
        empty = (
            await client.get(
                "/api/tickets/sla-report",
                params={"since": "2020-01-01T00:00:00Z", "until": "2020-02-01T00:00:00Z"},
            )
        ).json()
        assert empty["by_priority"] == []
        backwards = await client.get(
            "/api/tickets/sla-report",
            params={"since": "2020-02-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"},
        )
        assert backwards.json()["errors"][0]["field"] == "until"
    async with hub.client(agent.token) as client:
        assert (await client.get("/api/tickets/sla-report")).status_code == 403


async def test_the_sweep_fires_what_no_timed_check_will(hub: RunningHub, organization: Organization) -> None:
    """A check lost with a process that died mid-way: the minute's sweep finds the ticket by its
    next-check time and fires it, once."""
    async with hub.client(organization.admin.token) as client:
        await client.put(
            "/api/tickets/sla-policies/low",
            json={"first_response_minutes": 60, "resolution_minutes": 120, "business_hours_only": False},
        )
        ticket = (await client.post("/api/tickets", json={"title": "Lost", "priority": "low"})).json()
        past = utcnow() - timedelta(seconds=1)
        async with hub.runtime.db.session(organization.id) as session:  # due, and no timed check left
            await session.execute(
                update(Ticket)
                .where(Ticket.id == uuid.UUID(ticket["id"]))
                .values(resolution_due_at=past, sla_check_at=past)
                .execution_options(synchronize_session=False)
            )
            await session.execute(delete(ScheduledJob).where(ScheduledJob.key.like(f"sla:{ticket['id']}:%")))
            await session.commit()
        for _ in range(2):
            await hub.runtime.broker.find_task("tickets.sweep_sla").kiq()

        async def breached() -> dict[str, Any] | None:
            shown = (await client.get(f"/api/tickets/{ticket['id']}")).json()
            return shown if shown["resolution"]["breached_at"] else None

        await eventually(breached)
        await asyncio.sleep(0.5)
        assert (await timeline_kinds(client, ticket["id"])).count("sla_breached") == 1
        async with hub.runtime.db.session(organization.id) as session:
            left = await session.get(Ticket, uuid.UUID(ticket["id"]))
            assert left is not None
            # Next: the first response, still running.
            assert left.sla_check_at == left.first_response_warn_at


async def test_answering_in_the_chat_is_the_first_response(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="c-1", **{"from": "+966564440001"}, text="Where is it?")).json()
    async with hub.client(organization.admin.token) as client:
        await client.put(
            "/api/tickets/sla-policies/normal",
            json={"first_response_minutes": 30, "resolution_minutes": 120, "business_hours_only": False},
        )
        ticket = (
            await client.post(
                "/api/tickets", json={"title": "Where", "conversation_id": stored["conversation_id"]}
            )
        ).json()
        assert ticket["first_response"]["met_at"] is None
        path = f"/api/inbox/conversations/{stored['conversation_id']}/messages"
        await client.post(path, json={"text": "a note for the team", "private": True})
        await asyncio.sleep(0.5)
        assert (await client.get(f"/api/tickets/{ticket['id']}")).json()["first_response"]["met_at"] is None
        await client.post(path, json={"text": "It left the warehouse today."})

        async def answered() -> dict[str, Any] | None:
            shown = (await client.get(f"/api/tickets/{ticket['id']}")).json()
            return shown if shown["first_response"]["met_at"] else None

        shown = await eventually(answered)
        assert shown["first_response"]["breached_at"] is None
        changes = (await client.get(f"/api/tickets/{ticket['id']}/timeline")).json()["items"]
        assert changes[0]["kind"] == "first_response"
        assert changes[0]["details"] == {"met": True, "via": "chat"}
        assert changes[0]["actor_id"] == str(organization.admin.user_id)


async def test_a_reply_from_the_customer_reopens_a_ticket_waiting_on_them(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (
        await channel.send(external_id="w-1", **{"from": "+966565550001"}, text="Screen is black")
    ).json()
    async with hub.client(organization.admin.token) as client:
        await client.put(
            "/api/tickets/sla-policies/normal",
            json={"first_response_minutes": 30, "resolution_minutes": 120, "business_hours_only": False},
        )
        ticket = (
            await client.post(
                "/api/tickets", json={"title": "Black screen", "conversation_id": stored["conversation_id"]}
            )
        ).json()
        waiting = (
            await client.patch(f"/api/tickets/{ticket['id']}", json={"status": "waiting_on_customer"})
        ).json()
        assert waiting["resolution"]["left_seconds"] > 7100
        await channel.send(external_id="w-2", **{"from": "+966565550001"}, text="Here is the photo")

        async def reopened() -> dict[str, Any] | None:
            shown = (await client.get(f"/api/tickets/{ticket['id']}")).json()
            return shown if shown["status"] == "open" else None

        shown = await eventually(reopened)
        assert shown["resolution"]["left_seconds"] is None  # the clock runs again
        assert moment(shown["resolution"]["due_at"]) > moment(ticket["resolution"]["due_at"])  # type: ignore[operator]
        change = (await client.get(f"/api/tickets/{ticket['id']}/timeline")).json()["items"][0]
        assert (change["kind"], change["actor_id"], change["details"]) == (
            "status",
            None,
            {"old": "waiting_on_customer", "new": "open"},
        )
