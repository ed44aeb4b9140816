"""Labels, canned responses, search, snoozing, and replies that survive a crash before sending."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from sqlalchemy import update

from hub.db import utcnow
from inbox.models import Message
from inbox.services import requeue_stalled
from tests.conftest import Organization, RunningHub, eventually
from tests.helpers.channels import Receiver, make_channel


async def test_labels_filter_conversations(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    billing = (await channel.send(external_id="l-1", **{"from": "+96598111111"}, text="invoice wrong")).json()
    other = (await channel.send(external_id="l-2", **{"from": "+96598222222"}, text="hello")).json()
    async with hub.client(organization.members["manager"].token) as client:
        created = await client.post("/api/inbox/labels", json={"name": "billing", "color": "#ff0000"})
        assert created.status_code == 201
        assert (await client.post("/api/inbox/labels", json={"name": "billing"})).status_code == 409
        await client.post("/api/inbox/labels", json={"name": "vip"})
        tagged = await client.post(
            f"/api/inbox/conversations/{billing['conversation_id']}/labels",
            json={"labels": ["vip", "billing"]},
        )
        assert tagged.json()["labels"] == ["billing", "vip"]
        unknown = await client.post(
            f"/api/inbox/conversations/{other['conversation_id']}/labels", json={"labels": ["nope"]}
        )
        assert unknown.status_code == 400
        assert unknown.json()["errors"][0]["field"] == "labels"
        filtered = (await client.get("/api/inbox/conversations", params={"label": "billing"})).json()["items"]
        assert [c["id"] for c in filtered] == [billing["conversation_id"]]
        assert filtered[0]["labels"] == ["billing", "vip"]
    async with hub.client(organization.members["agent"].token) as client:
        refused = await client.post("/api/inbox/labels", json={"name": "agents-cannot"})
        assert refused.status_code == 403


async def test_canned_responses_by_shortcode(hub: RunningHub, organization: Organization) -> None:
    async with hub.client(organization.members["manager"].token) as client:
        made = await client.post(
            "/api/inbox/canned-responses", json={"shortcode": "hours", "content": "نعمل من 9 إلى 5"}
        )
        assert made.status_code == 201
        await client.post("/api/inbox/canned-responses", json={"shortcode": "hello", "content": "Hello!"})
        duplicate = await client.post(
            "/api/inbox/canned-responses", json={"shortcode": "hours", "content": "x"}
        )
        assert duplicate.status_code == 409
        bad = await client.post(
            "/api/inbox/canned-responses", json={"shortcode": "two words", "content": "x"}
        )
        assert bad.status_code == 400
        changed = await client.patch(
            f"/api/inbox/canned-responses/{made.json()['id']}", json={"content": "9–5"}
        )
        assert changed.json()["content"] == "9–5"
    async with hub.client(organization.members["agent"].token) as client:
        found = (await client.get("/api/inbox/canned-responses", params={"q": "/ho"})).json()
        assert [r["shortcode"] for r in found] == ["hours"]
        assert (
            await client.post("/api/inbox/canned-responses", json={"shortcode": "x", "content": "y"})
        ).status_code == 403


async def test_search_finds_only_what_the_user_may_see(
    hub: RunningHub,
    organization: Organization,
    receiver: Receiver,
) -> None:
    channel = await make_channel(hub, organization, receiver)
    await channel.send(external_id="s-1", **{"from": "+96597111111"}, text="my parcel tracking number is 42")
    await channel.send(external_id="s-2", **{"from": "+96597222222"}, text="nothing to see")
    async with hub.client(organization.admin.token) as client:
        hits = (await client.get("/api/inbox/search", params={"q": "PARCEL"})).json()["items"]
        assert [m["external_id"] for m in hits] == ["s-1"]
    async with hub.client(organization.members["agent"].token) as client:
        assert (await client.get("/api/inbox/search", params={"q": "parcel"})).json()["items"] == []


async def test_a_snoozed_conversation_wakes_at_its_time_or_with_a_new_message(
    hub: RunningHub,
    organization: Organization,
    receiver: Receiver,
) -> None:
    channel = await make_channel(hub, organization, receiver)
    first = (await channel.send(external_id="z-1", **{"from": "+96596111111"}, text="later please")).json()
    second = (await channel.send(external_id="z-2", **{"from": "+96596222222"}, text="me too")).json()
    async with hub.client(organization.admin.token) as client:
        past = await client.patch(
            f"/api/inbox/conversations/{first['conversation_id']}",
            json={"status": "snoozed", "snoozed_until": (utcnow() - timedelta(minutes=1)).isoformat()},
        )
        assert past.status_code == 400
        for conversation, delay in ((first, 2), (second, 3600)):
            snoozed = await client.patch(
                f"/api/inbox/conversations/{conversation['conversation_id']}",
                json={
                    "status": "snoozed",
                    "snoozed_until": (utcnow() + timedelta(seconds=delay)).isoformat(),
                },
            )
            assert snoozed.json()["status"] == "snoozed"

        async def status_of(conversation_id: str) -> str:
            return (await client.get(f"/api/inbox/conversations/{conversation_id}")).json()["status"]

        await eventually(lambda: _is(status_of(first["conversation_id"]), "open"), within=20)
        assert await status_of(second["conversation_id"]) == "snoozed"
        await channel.send(external_id="z-3", **{"from": "+96596222222"}, text="any news?")
        assert await status_of(second["conversation_id"]) == "open"


async def _is(value: object, expected: str) -> bool:
    return await value == expected  # type: ignore[misc]


async def test_a_reply_left_queued_by_a_crash_is_sent_once_after_restart(
    hub: RunningHub,
    organization: Organization,
    receiver: Receiver,
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="c-1", **{"from": "+96595111111"}, text="hi")).json()
    # What a crash between commit and hand-off leaves behind: a queued reply nobody is sending.
    async with hub.runtime.db.session(organization.id) as session:
        message = Message(
            conversation_id=uuid.UUID(stored["conversation_id"]),
            channel_id=uuid.UUID(channel.id),
            direction="outbound",
            kind="text",
            text="written before the crash",
            status="queued",
        )
        session.add(message)
        await session.flush()
        stale = utcnow() - timedelta(minutes=5)
        await session.execute(
            update(Message)
            .where(Message.id == message.id)
            .values(updated_at=stale)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    assert await requeue_stalled(hub.runtime) >= 1
    await eventually(
        lambda: [p for p in receiver.of_type("message") if p["text"] == "written before the crash"]
    )
    assert await requeue_stalled(hub.runtime) == 0  # sent now: nothing left to pick up
    await asyncio.sleep(0.5)
    assert len([p for p in receiver.of_type("message") if p["text"] == "written before the crash"]) == 1


async def test_new_conversations_go_in_turn_to_online_agents_under_the_cap(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    from tests.conftest import add_member
    from tests.helpers.sockets import connect

    channel = await make_channel(hub, organization, receiver)
    first_agent = organization.members["agent"]
    second_agent = await add_member(hub, organization, "agent")  # takes the dict's "agent" entry
    agents = sorted([first_agent, second_agent], key=lambda member: member.user_id)
    offline = await add_member(hub, organization, "agent")
    screens = [await connect(hub, agent.token) for agent in agents]
    async with hub.client(organization.admin.token) as client:
        assert (await client.get("/api/inbox/settings")).json() == {"auto_assign": False, "agent_cap": 10}
        changed = await client.patch("/api/inbox/settings", json={"auto_assign": True, "agent_cap": 1})
        assert changed.json() == {"auto_assign": True, "agent_cap": 1}
        bad = await client.patch("/api/inbox/settings", json={"agent_cap": 0})
        assert bad.status_code == 400
    assignees = []
    for number in ("+96594111111", "+96594222222", "+96594333333"):
        stored = (await channel.send(external_id=f"rr-{number}", **{"from": number}, text="hello")).json()
        async with hub.client(organization.admin.token) as client:
            assignees.append(
                (await client.get(f"/api/inbox/conversations/{stored['conversation_id']}")).json()[
                    "assignee_id"
                ]
            )
    assert assignees == [str(agents[0].user_id), str(agents[1].user_id), None]  # in turn, then both are full
    assert str(offline.user_id) not in assignees
    # The agent it went to sees it arrive live.
    await eventually(lambda: screens[0].named("newMessage"))
    for screen in screens:
        await screen.client.disconnect()


async def test_the_turn_goes_round_the_online_agents_and_starts_again(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    from tests.conftest import add_member
    from tests.helpers.sockets import connect

    channel = await make_channel(hub, organization, receiver)
    agents = [organization.members["agent"]] + [
        await add_member(hub, organization, "agent") for _ in range(2)
    ]
    agents.sort(key=lambda member: member.user_id)
    screens = [await connect(hub, agent.token) for agent in agents]
    async with hub.client(organization.admin.token) as client:
        await client.patch("/api/inbox/settings", json={"auto_assign": True, "agent_cap": 10})
        assignees = []
        for n in range(5):
            stored = (
                await channel.send(external_id=f"round-{n}", **{"from": f"+9659455500{n}"}, text="hi")
            ).json()
            conversation = await client.get(f"/api/inbox/conversations/{stored['conversation_id']}")
            assignees.append(conversation.json()["assignee_id"])
        # Switched off: the next first message waits for a person, at once in this process.
        await client.patch("/api/inbox/settings", json={"auto_assign": False})
        stored = (await channel.send(external_id="round-off", **{"from": "+96594555099"}, text="hi")).json()
        waiting = (await client.get(f"/api/inbox/conversations/{stored['conversation_id']}")).json()
    order = [str(agent.user_id) for agent in agents]
    assert assignees == [*order, *order[:2]]
    assert waiting["assignee_id"] is None
    for screen in screens:
        await screen.client.disconnect()


async def test_conversations_page_by_cursor_most_recent_first(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    made = []
    for n in range(7):
        stored = (
            await channel.send(external_id=f"p-{n}", **{"from": f"+9659311111{n}"}, text=f"m{n}")
        ).json()
        made.append(stored["conversation_id"])
    # An older conversation that speaks again moves to the top.
    await channel.send(external_id="p-again", **{"from": "+96593111112"}, text="back again")
    expected = [made[2], *reversed([c for c in made if c != made[2]])]
    seen: list[str] = []
    cursor = None
    async with hub.client(organization.admin.token) as client:
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/inbox/conversations", params=params)).json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        bad = await client.get("/api/inbox/conversations", params={"cursor": "%%%"})
    assert seen == expected
    assert bad.status_code == 400


async def test_the_stalled_sweep_leaves_replies_waiting_for_their_retry_alone(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="w-1", **{"from": "+96595222222"}, text="hi")).json()
    # A reply the channel refused five times, last five minutes ago: its sixth try is due in ten.
    async with hub.runtime.db.session(organization.id) as session:
        waiting = Message(
            conversation_id=uuid.UUID(stored["conversation_id"]),
            channel_id=uuid.UUID(channel.id),
            direction="outbound",
            kind="text",
            text="waiting for its retry",
            status="queued",
            send_attempts=6,
        )
        session.add(waiting)
        await session.flush()
        await session.execute(
            update(Message)
            .where(Message.id == waiting.id)
            .values(updated_at=utcnow() - timedelta(minutes=5))
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    assert await requeue_stalled(hub.runtime) == 0
    await asyncio.sleep(0.5)
    assert [p for p in receiver.of_type("message") if p["text"] == "waiting for its retry"] == []


async def test_one_phone_writing_to_two_organizations_is_two_separate_customers(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    from tests.conftest import register
    from tests.helpers.sockets import connect

    other = await register(hub)
    ours_channel = await make_channel(hub, organization, receiver)
    theirs_channel = await make_channel(hub, other, receiver)
    phone = {"from": "+96597123456"}
    ours = (await ours_channel.send(external_id="same-1", **phone, name="Nour", text="to us")).json()
    async with hub.client(organization.admin.token) as client:
        await client.post("/api/inbox/labels", json={"name": "vip"})
        await client.post(
            f"/api/inbox/conversations/{ours['conversation_id']}/labels", json={"labels": ["vip"]}
        )
    their_screen = await connect(hub, other.admin.token)
    # The same external id and phone at the other organization is a different message of a different customer.
    theirs = (await theirs_channel.send(external_id="same-1", **phone, name="N.", text="to them")).json()
    again = (await ours_channel.send(external_id="same-2", **phone, text="to us again")).json()

    assert theirs["conversation_id"] != ours["conversation_id"]
    assert again["conversation_id"] == ours["conversation_id"]
    pushed = (await eventually(lambda: their_screen.named("newMessage")))[0]
    assert pushed["conversation"]["labels"] == []  # our label is not theirs
    assert pushed["conversation"]["customer"]["name"] == "N."
    assert pushed["conversation"]["unread_count"] == 1
    async with hub.client(other.admin.token) as client:
        listed = (await client.get("/api/inbox/conversations")).json()["items"]
        assert [c["id"] for c in listed] == [theirs["conversation_id"]]
        messages = (await client.get(f"/api/inbox/conversations/{theirs['conversation_id']}/messages")).json()
        assert [m["text"] for m in messages["items"]] == ["to them"]
        assert (await client.get(f"/api/inbox/conversations/{ours['conversation_id']}")).status_code == 404
    async with hub.client(organization.admin.token) as client:
        mine = (await client.get(f"/api/inbox/conversations/{ours['conversation_id']}")).json()
        assert mine["customer"]["name"] == "Nour"
        assert mine["unread_count"] == 2
        assert mine["labels"] == ["vip"]
    await their_screen.client.disconnect()
