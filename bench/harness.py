"""What the benchmarks share: serving an ASGI app on a free port of this machine, on the event
loop that `hub serve` runs (uvloop, which uvicorn picks when it is installed)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvicorn
import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop: what the hub's server runs on, so the figures are the ones it gets."""
    return uvloop.run(main)


async def serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Start uvicorn in this loop; the server, its task and its address."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
        await asyncio.sleep(0.02)
    return server, task, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
