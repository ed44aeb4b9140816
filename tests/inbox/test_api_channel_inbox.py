"""The inbox end to end through the API channel: a signed post reaches the right screens live, the
agent's reply reaches a real local webhook receiver, receipts move it to read."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from channels.api import signature
from hub.i18n import translate
from hub.outbound import GENERIC_FAILURE
from tests.conftest import Organization, RunningHub, eventually, make_settings, register, start_hub
from tests.helpers.channels import PDF, Receiver, make_channel
from tests.helpers.sockets import connect


async def test_inbound_is_stored_once_and_reaches_the_right_screens(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stranger = await register(hub)
    screens = {role: await connect(hub, member.token) for role, member in organization.members.items()}
    outsider = await connect(hub, stranger.admin.token)

    first = await channel.send(
        external_id="m-1", **{"from": "+966 50 123 4567"}, name="Layla", text="مرحبا، أحتاج مساعدة"
    )
    assert first.status_code == 202, first.text
    ids = first.json()
    again = await channel.send(
        external_id="m-1", **{"from": "+966 50 123 4567"}, name="Layla", text="مرحبا، أحتاج مساعدة"
    )
    assert again.status_code == 202
    assert again.json() == ids  # a repeated delivery answers the same ids and stores nothing

    for role in ("admin", "manager", "member"):
        await eventually(lambda role=role: screens[role].named("newMessage"))
    await asyncio.sleep(0.3)
    event = screens["admin"].named("newMessage")
    assert len(event) == 1
    assert event[0]["chatId"] == ids["conversation_id"]
    assert event[0]["message"]["text"] == "مرحبا، أحتاج مساعدة"
    assert event[0]["conversation"]["customer"] == {
        "id": event[0]["conversation"]["customer"]["id"],
        "name": "Layla",
        "phone": "+966501234567",
    }
    assert screens["agent"].named("newMessage") == []  # not assigned to them
    assert outsider.received == []

    # The same person without the plus sign is the same customer and conversation.
    later = await channel.send(external_id="m-2", **{"from": "966501234567"}, text="هل من أحد؟")
    assert later.json()["conversation_id"] == ids["conversation_id"]
    async with hub.client(organization.admin.token) as client:
        listed = (await client.get("/api/inbox/conversations")).json()["items"]
        seed_address = (await client.get("/api/whatsapp/conversations")).json()["items"]
        assert seed_address == listed
        messages = (await client.get(f"/api/inbox/conversations/{ids['conversation_id']}/messages")).json()[
            "items"
        ]
    assert [c["id"] for c in listed] == [ids["conversation_id"]]
    assert listed[0]["unread_count"] == 2
    assert [m["text"] for m in messages] == ["هل من أحد؟", "مرحبا، أحتاج مساعدة"]  # newest first
    for inbox in (*screens.values(), outsider):
        await inbox.client.disconnect()


async def test_first_messages_of_a_new_sender_arriving_together_make_one_customer_and_conversation(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    # Several messages of a person never seen before, posted at once: on PostgreSQL their
    # transactions run side by side, and all but one find the customer's conversation started by
    # another after they looked; they begin again and join it.
    channel = await make_channel(hub, organization, receiver)
    answers = await asyncio.gather(
        *(
            channel.send(external_id=f"burst-{n}", **{"from": "+966 50 765 4321"}, text=f"part {n}")
            for n in range(8)
        )
    )
    assert [answer.status_code for answer in answers] == [202] * 8, [answer.text for answer in answers]
    chats = {answer.json()["conversation_id"] for answer in answers}
    assert len(chats) == 1
    chat = chats.pop()
    async with hub.client(organization.admin.token) as client:
        page = (await client.get(f"/api/inbox/conversations/{chat}/messages")).json()
        customers = (await client.get("/api/crm/customers", params={"q": "+966507654321"})).json()
        conversation = (await client.get(f"/api/inbox/conversations/{chat}")).json()
    assert sorted(m["text"] for m in page["items"]) == sorted(f"part {n}" for n in range(8))
    assert [c["phone"] for c in customers["items"]] == ["+966507654321"]
    assert conversation["unread_count"] == 8
    assert conversation["last_message_preview"] in {f"part {n}" for n in range(8)}


@pytest.mark.parametrize("problem", ["unsigned", "wrong-secret", "stale", "tampered"])
async def test_bad_signatures_are_401_and_store_nothing(
    hub: RunningHub, organization: Organization, receiver: Receiver, problem: str
) -> None:
    channel = await make_channel(hub, organization, receiver)
    payload = {"external_id": f"bad-{problem}", "from": "+971501234567", "text": "hello"}
    if problem == "tampered":
        body = json.dumps(payload).encode()
        header = signature(channel.secret, body, int(time.time()))
        async with httpx.AsyncClient() as client:
            response = await client.post(
                channel.inbound_url,
                content=body.replace(b"hello", b"HELLO"),
                headers={"X-Hub-Signature": header, "Content-Type": "application/json"},
            )
    else:
        response = await channel.post(
            channel.inbound_url,
            payload,
            signed=problem != "unsigned",
            stale=problem == "stale",
            secret="0" * 64 if problem == "wrong-secret" else None,
        )
    assert response.status_code == 401, response.text
    async with hub.client(organization.admin.token) as client:
        assert (await client.get("/api/inbox/conversations")).json()["items"] == []


async def test_bad_inbound_bodies_name_the_field(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    missing = await channel.post(channel.inbound_url, {"from": "+971501234567", "text": "x"})
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "external_id"
    empty = await channel.post(channel.inbound_url, {"external_id": "e", "from": "+971501234567"})
    assert empty.status_code == 400
    assert empty.json()["errors"][0]["field"] == "text"
    garbage = await channel.post(
        channel.inbound_url, {"external_id": "e", "from": "x", "text": "y", "extra": 1}
    )
    assert garbage.status_code == 400
    assert garbage.json()["errors"][0]["field"] == "extra"


async def test_assignment_reply_receipts_and_read(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    agent = organization.members["agent"]
    stored = (
        await channel.send(
            external_id="q-1", **{"from": "web-visitor-42"}, name="Visitor", text="Where is my order?"
        )
    ).json()
    conversation_id = stored["conversation_id"]
    agent_screen = await connect(hub, agent.token)

    async with hub.client(agent.token) as client:
        hidden = await client.get(f"/api/inbox/conversations/{conversation_id}")
        assert hidden.status_code == 404  # not assigned to this agent yet
    async with hub.client(organization.members["manager"].token) as client:
        assigned = await client.post(
            f"/api/inbox/conversations/{conversation_id}/assign", json={"assignee_id": str(agent.user_id)}
        )
        assert assigned.status_code == 200
        assert assigned.json()["assignee_id"] == str(agent.user_id)
    await eventually(lambda: agent_screen.named("conversationUpdated"))

    async with hub.client(agent.token) as client:
        mine = (await client.get("/api/inbox/conversations", params={"assignee": "me"})).json()["items"]
        assert [c["id"] for c in mine] == [conversation_id]
        sent = await client.post(
            f"/api/inbox/conversations/{conversation_id}/messages", json={"text": "It ships today."}
        )
        assert sent.status_code == 201
        message = sent.json()
        assert message["status"] == "queued"
        note = await client.post(
            f"/api/inbox/conversations/{conversation_id}/messages",
            json={"text": "VIP customer", "private": True},
        )
        assert note.json()["status"] == "sent"

    await eventually(lambda: receiver.of_type("message"))
    post = receiver.of_type("message")[0]
    assert post["text"] == "It ships today."
    assert post["to"] == "web-visitor-42"
    assert post["message_id"] == message["id"]
    assert receiver.bad_signatures == 0
    assert all(p.get("text") != "VIP customer" for p in receiver.posts)  # private notes never leave

    async def status_is(expected: str) -> bool:
        async with hub.client(agent.token) as client:
            items = (await client.get(f"/api/inbox/conversations/{conversation_id}/messages")).json()["items"]
        return next(m for m in items if m["id"] == message["id"])["status"] == expected

    await eventually(lambda: status_is("sent"))
    for status in ("delivered", "read", "delivered"):  # a late "delivered" does not move it back
        receipt = await channel.post(
            channel.receipts_url, {"external_id": f"ext-{message['id']}", "status": status}
        )
        assert receipt.status_code == 204
    assert await status_is("read")

    def statuses_seen() -> list[str]:
        return [
            u["message"]["status"]
            for u in agent_screen.named("messageUpdated")
            if u["message"]["id"] == message["id"]
        ]

    await eventually(lambda: statuses_seen()[-1:] == ["read"])
    assert statuses_seen() == [
        "sent",
        "delivered",
        "read",
    ]  # live, in order, and the late receipt changed nothing

    async with hub.client(agent.token) as client:
        read = await client.post(f"/api/inbox/conversations/{conversation_id}/read")
        assert read.json()["unread_count"] == 0
    await eventually(lambda: receiver.of_type("messages_read"))
    assert receiver.of_type("messages_read")[0]["external_ids"] == ["q-1"]
    await agent_screen.client.disconnect()


async def test_a_refused_webhook_marks_the_reply_failed(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="f-1", **{"from": "+201001234567"}, text="hi")).json()
    receiver.answer_status = 400
    async with hub.client(organization.admin.token) as client:
        sent = (
            await client.post(
                f"/api/inbox/conversations/{stored['conversation_id']}/messages", json={"text": "hello"}
            )
        ).json()

        async def failed() -> dict[str, Any] | None:
            items = (
                await client.get(f"/api/inbox/conversations/{stored['conversation_id']}/messages")
            ).json()["items"]
            found = next(m for m in items if m["id"] == sent["id"])
            return found if found["status"] == "failed" else None

        message = await eventually(failed)
    assert message["failure_reason"] == GENERIC_FAILURE  # the same whatever went wrong


async def test_mark_as_read_from_the_socket_updates_the_other_tabs(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="r-1", **{"from": "+96170123456"}, text="ping")).json()
    manager = organization.members["manager"]
    first_tab, second_tab = await connect(hub, manager.token), await connect(hub, manager.token)
    answer = await first_tab.client.call("markAsRead", stored["conversation_id"], timeout=10)
    assert answer == {"chatId": stored["conversation_id"], "unread_count": 0}
    updated = await eventually(lambda: second_tab.named("conversationUpdated"))
    assert updated[-1]["conversation"]["unread_count"] == 0
    refused = await first_tab.client.call("markAsRead", "not-an-id", timeout=10)
    assert refused["error"] == 400
    hidden = await (await connect(hub, organization.members["agent"].token)).client.call(
        "markAsRead", stored["conversation_id"], timeout=10
    )
    assert hidden["error"] == 404  # an agent cannot touch a conversation not assigned to them
    for tab in (first_tab, second_tab):
        await tab.client.disconnect()


async def test_members_only_look_they_do_not_mark_chats_read(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="m-1", **{"from": "+96170123999"}, text="ping")).json()
    member = organization.members["member"]
    async with hub.client(member.token) as client:
        refused = await client.post(f"/api/inbox/conversations/{stored['conversation_id']}/read")
        assert refused.status_code == 403
    screen = await connect(hub, member.token)
    answer = await screen.client.call("markAsRead", stored["conversation_id"], timeout=10)
    assert answer["error"] == 403
    await screen.client.disconnect()
    async with hub.client(organization.admin.token) as client:
        conversation = (await client.get(f"/api/inbox/conversations/{stored['conversation_id']}")).json()
    assert conversation["unread_count"] == 1
    assert receiver.of_type("messages_read") == []


async def test_edit_delete_and_forward_own_replies(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    first = (await channel.send(external_id="e-1", **{"from": "+96171123456"}, text="one")).json()
    second = (await channel.send(external_id="e-2", **{"from": "+96171123457"}, text="two")).json()
    admin = organization.admin
    screen = await connect(hub, organization.members["manager"].token)
    async with hub.client(admin.token) as client:
        sent = (
            await client.post(
                "/api/whatsapp/send", json={"conversation_id": first["conversation_id"], "text": "Hello"}
            )
        ).json()
        await eventually(lambda: receiver.of_type("message"))

        async def delivered() -> bool:
            items = (
                await client.get(f"/api/inbox/conversations/{first['conversation_id']}/messages")
            ).json()["items"]
            return next(m for m in items if m["id"] == sent["id"])["status"] == "sent"

        await eventually(delivered)
        edited = await client.put(
            "/api/whatsapp/message", json={"message_id": sent["id"], "text": "Hello again"}
        )
        assert edited.status_code == 200
        assert edited.json()["edited_at"] is not None
        await eventually(lambda: receiver.of_type("message_edited"))
        assert receiver.of_type("message_edited")[0]["text"] == "Hello again"

        forwarded = await client.post(
            f"/api/inbox/conversations/{first['conversation_id']}/messages/{sent['id']}/forward",
            json={"conversation_id": second["conversation_id"]},
        )
        assert forwarded.status_code == 201
        assert forwarded.json()["conversation_id"] == second["conversation_id"]
        assert forwarded.json()["text"] == "Hello again"

        deleted = await client.delete("/api/whatsapp/message", params={"message_id": sent["id"]})
        assert deleted.status_code == 200
        assert deleted.json()["text"] is None
        assert deleted.json()["deleted_at"] is not None
        await eventually(lambda: receiver.of_type("message_deleted"))
        await eventually(lambda: screen.named("messageDeleted"))
        assert screen.named("messageDeleted")[0] == {
            "chatId": first["conversation_id"],
            "messageId": sent["id"],
        }
        again = await client.delete("/api/whatsapp/message", params={"message_id": sent["id"]})
        assert again.status_code == 409
    async with hub.client(organization.members["manager"].token) as client:
        not_theirs = await client.put(
            "/api/whatsapp/message", json={"message_id": forwarded.json()["id"], "text": "mine now"}
        )
        assert not_theirs.status_code == 409  # only one's own messages
    await screen.client.disconnect()


async def test_sending_on_a_disconnected_channel_is_409_and_kept_as_failed(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    from sqlalchemy import update

    from channels.models import Channel

    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="d-1", **{"from": "+96176123456"}, text="hi")).json()
    async with hub.runtime.db.session(organization.id) as session:
        await session.execute(update(Channel).values(state="disconnected"))
        await session.commit()
    async with hub.client(organization.admin.token, language="en") as client:
        refused = await client.post(
            f"/api/inbox/conversations/{stored['conversation_id']}/messages", json={"text": "hello?"}
        )
        assert refused.status_code == 409
        assert refused.json()["detail"] == "The channel Website is disconnected; messages cannot be sent now."
        items = (await client.get(f"/api/inbox/conversations/{stored['conversation_id']}/messages")).json()[
            "items"
        ]
    kept = items[0]
    assert kept["text"] == "hello?"
    assert kept["status"] == "failed"
    assert kept["failure_reason"] == "channel is disconnected"
    assert receiver.of_type("message") == []


async def test_a_busy_process_turns_posts_away_and_stores_nothing_of_them(
    tmp_path: Path, receiver: Receiver
) -> None:
    hub = await start_hub(make_settings(tmp_path, HUB_INBOUND_MAX_PENDING="1"), kind="sqlite")
    release = asyncio.Event()

    async def slow_file(_request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=PDF, content_type="application/pdf")

    files = web.Application()
    files.router.add_get("/brochure.pdf", slow_file)
    runner = web.AppRunner(files)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    file_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/brochure.pdf"  # type: ignore[union-attr]
    try:
        organization = await register(hub)
        channel = await make_channel(hub, organization, receiver)
        sender = {"from": "+966501112233"}
        attachment = {"url": file_url, "content_type": "application/pdf", "filename": "brochure.pdf"}
        # The first post waits for its attachment, so the process has as much in progress as allowed.
        first = asyncio.create_task(
            channel.send(external_id="slow-1", **sender, text="the brochure", attachments=[attachment])
        )
        await eventually(lambda: hub.runtime.inbound_gate.pending == 1)
        turned_away = await channel.send(external_id="quick-1", **sender, text="hello?")
        receipt_turned_away = await channel.post(
            channel.receipts_url, {"external_id": "anything", "status": "read"}
        )
        release.set()
        accepted = await first
        again = await channel.send(external_id="quick-1", **sender, text="hello?")

        assert turned_away.status_code == 503
        assert turned_away.headers["Retry-After"] == "2"
        assert turned_away.json()["detail"] == translate("ar", "The hub is busy. Try again shortly.")
        assert receipt_turned_away.status_code == 503
        assert accepted.status_code == 202, accepted.text
        assert again.status_code == 202, again.text
        assert hub.runtime.inbound_gate.pending == 0
        async with hub.client(organization.admin.token) as client:
            messages = (
                await client.get(f"/api/inbox/conversations/{again.json()['conversation_id']}/messages")
            ).json()["items"]
        # Nothing of the refused post was kept: the message is there once, from the post that was accepted.
        assert [m["text"] for m in messages] == ["hello?", "the brochure"]
    finally:
        release.set()
        await runner.cleanup()
        await hub.stop()


async def test_a_possible_number_the_metadata_does_not_know_yet_is_kept(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    """+971 5 0000 0000 has the length of a UAE mobile number, but the phone metadata does not list
    that range: the channel delivered a message from it, so it is the customer's phone."""
    channel = await make_channel(hub, organization, receiver)
    stored = (await channel.send(external_id="p-1", **{"from": "97150000000"}, text="hi")).json()
    async with hub.client(organization.admin.token) as client:
        conversation = (await client.get(f"/api/inbox/conversations/{stored['conversation_id']}")).json()
    assert conversation["customer"]["phone"] == "+97150000000"
