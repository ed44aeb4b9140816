"""A business system behind API channels, in its own process, for the campaign benchmark.

    python bench/webhook_receiver.py PORT MIN_DELAY MAX_DELAY

POST /hook/<channel> keeps each message with its arrival time (before answering, as a real system
would) and answers after a random delay; a `message_lookup` is answered from what it kept.
GET /stats gives everything kept, by channel.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import defaultdict
from typing import Any

from aiohttp import web

received: dict[str, list[tuple[float, str]]] = defaultdict(list)
seen: set[str] = set()


def app(low: float, high: float) -> web.Application:
    async def hook(request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        if payload["type"] == "message_lookup":
            found = payload["message_id"] in seen
            return web.json_response(
                {"found": found, "external_id": payload["message_id"] if found else None}
            )
        if payload["type"] != "message":
            return web.json_response({})
        received[request.match_info["channel"]].append((time.time(), payload["message_id"]))
        seen.add(payload["message_id"])
        await asyncio.sleep(random.uniform(low, high))
        return web.json_response({"external_id": payload["message_id"]})

    async def stats(_request: web.Request) -> web.Response:
        body: dict[str, Any] = {channel: entries for channel, entries in received.items()}
        return web.json_response(body)

    async def reset(_request: web.Request) -> web.Response:
        received.clear()
        seen.clear()
        return web.json_response({})

    application = web.Application()
    application.router.add_post("/hook/{channel}", hook)
    application.router.add_get("/stats", stats)
    application.router.add_post("/reset", reset)
    return application


if __name__ == "__main__":
    port, low, high = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    web.run_app(app(low, high), host="127.0.0.1", port=port, print=None, access_log=None)
