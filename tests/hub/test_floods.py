"""Floods from outsiders: sockets without tokens and unsigned channel posts, hundreds at once. Each
is turned away, and meanwhile another organization's customer still gets through to its agents'
screens, whose sockets stay connected."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import socketio

from tests.conftest import eventually, make_settings, register, start_hub
from tests.helpers.channels import make_channel, webhook_receiver
from tests.helpers.sockets import connect

FLOOD = 300


async def test_floods_of_tokenless_sockets_and_unsigned_posts_hold_nobody_else_back(tmp_path: Path) -> None:
    hub = await start_hub(make_settings(tmp_path), kind="sqlite")
    try:
        organization = await register(hub)
        screen = await connect(hub, organization.admin.token)
        async with webhook_receiver() as receiver:
            channel = await make_channel(hub, organization, receiver)
            gate = asyncio.Semaphore(50)

            async def tokenless(number: int) -> str:
                async with gate:
                    client = socketio.AsyncClient(reconnection=False)
                    try:
                        await client.connect(
                            hub.url,
                            auth={"token": f"forged-{number}"} if number % 2 else None,
                            transports=["websocket"],
                            wait_timeout=20,
                        )
                    except socketio.exceptions.ConnectionError as error:
                        return str(error)
                    finally:
                        await client.disconnect()
                    return "connected"

            async def unsigned(number: int, client: httpx.AsyncClient) -> int:
                async with gate:
                    answer = await client.post(
                        channel.inbound_url,
                        json={"external_id": f"flood-{number}", "from": "+966561239999", "text": "flood"},
                    )
                    return answer.status_code

            async with httpx.AsyncClient(timeout=30) as outsider:
                floods = asyncio.gather(
                    *(tokenless(n) for n in range(FLOOD)), *(unsigned(n, outsider) for n in range(FLOOD))
                )
                # Meanwhile the organization's own customer writes, signed, and is heard.
                sent = await channel.send(
                    external_id="real-1", **{"from": "+966561230001"}, text="still here"
                )
                results = await floods
            assert sent.status_code == 202, sent.text

            refused_sockets, posts = results[:FLOOD], results[FLOOD:]
            assert all(result != "connected" for result in refused_sockets)
            assert set(posts) <= {401, 429}  # unsigned, then the address is turned away before its body
            assert 429 in posts

        await eventually(
            lambda: any(m["message"]["text"] == "still here" for m in screen.named("newMessage"))
        )
        assert screen.client.connected
        async with hub.client(organization.admin.token) as client:
            chats = (await client.get("/api/inbox/conversations")).json()["items"]
        assert [chat["last_message_preview"] for chat in chats] == ["still here"]  # nothing of the flood kept
        await screen.client.disconnect()
    finally:
        await hub.stop()
