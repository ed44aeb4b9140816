"""What relaying an AI answer through the hub adds: from the AI server writing a piece to the
agent's socket receiving it.

    .venv/bin/python bench/ai_relay.py [--streams 40] [--words 200]

A local server that speaks the OpenAI protocol streams an answer of `--words` words, one piece per
word, as fast as it can. Baseline: the `openai` client reading that server directly. Hub: an
agent's socket asks the hub to improve a draft, and the hub relays the same stream to that socket
(`aiChunk` per piece, then `aiDone`). Each run measures, per stream, the time from the server's
first piece to the reader's first piece, and from the server's last piece to the reader having the
whole answer; it prints p50/p99 of both for the baseline and the hub, and what the hub adds.
The AI server runs in a process of its own (so its burst of writes does not hold up the hub's
reading), and says when it wrote each answer's first and last pieces; the hub and the readers
share this process, so the figures include the readers' own work on both sides alike. Times are
`time.perf_counter`, the system-wide monotonic clock on Linux, comparable across the processes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiohttp import web
from harness import bench_hub, organization_with_channel, run, serve

from channels.api import signature
from hub.app import create_app
from hub.config import Settings
from hub.logs import configure_logging
from tests.conftest import serve_web_app
from tests.helpers.openai_server import OpenAIServer


def serve_ai(words: int, address: Any) -> None:
    """The AI server, in its own process: its address goes back through `address`; `GET /written`
    answers when it wrote the last answer's first and last pieces."""

    async def main() -> None:
        server = OpenAIServer(answer=" ".join(f"word{n}" for n in range(words)))
        app = server.app()

        async def written(_request: web.Request) -> web.Response:
            return web.json_response(server.written[-1])

        app.router.add_get("/written", written)
        _runner, url = await serve_web_app(app)
        address.put(url)
        await asyncio.Event().wait()  # until the parent ends it

    run(main())


async def last_written(http: httpx.AsyncClient, url: str) -> tuple[float, float]:
    first, last = (await http.get(f"{url}/written")).json()
    return float(first), float(last)


def pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def describe(label: str, firsts: list[float], wholes: list[float]) -> None:
    print(
        f"{label:<10} first piece p50 {statistics.median(firsts):7.2f} ms  p99 {pct(firsts, 0.99):7.2f} ms"
        f"   whole answer p50 {statistics.median(wholes):7.2f} ms  p99 {pct(wholes, 0.99):7.2f} ms"
    )


async def baseline(server_url: str, streams: int) -> tuple[list[float], list[float]]:
    client = openai.AsyncOpenAI(base_url=f"{server_url}/v1", api_key="none", max_retries=0)
    http = httpx.AsyncClient(timeout=30)
    firsts, wholes = [], []
    for _ in range(streams):
        first = 0.0
        stream = await client.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "draft"}], stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and not first:
                first = time.perf_counter()
        done = time.perf_counter()
        written_first, written_last = await last_written(http, server_url)
        firsts.append((first - written_first) * 1000)
        wholes.append((done - written_last) * 1000)
    await http.aclose()
    return firsts, wholes


async def through_hub(server_url: str, streams: int) -> tuple[list[float], list[float]]:
    settings = Settings.from_env(
        bench_hub(
            HUB_AI_BASE_URL=f"{server_url}/v1",
            HUB_AI_MODEL="local",
            HUB_AI_REQUESTS_PER_MINUTE=str(10**6),
            # The readers share this loop with the hub: their work is not overload to refuse.
            HUB_INBOUND_MAX_LAG_MS="900000",
            HUB_INBOUND_MAX_WAIT_MS="900000",
            HUB_INBOUND_MAX_BUSY_PERCENT="100",
        ),
        read_dotenv=False,
    )
    configure_logging(settings)
    app = create_app(settings)
    uvicorn_server, task, url = await serve(app)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            registered, admin, channel = await organization_with_channel(http)
            body = b'{"external_id": "bench-1", "from": "+966500000001", "text": "hello"}'
            posted = await http.post(
                channel["inbound_url"],
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature": signature(channel["secret"], body, int(time.time())),
                },
            )
            assert posted.status_code == 202, posted.text
            chat = posted.json()["conversation_id"]
            socket = socketio.AsyncClient()
            arrivals: dict[str, dict[str, float]] = {}
            finished: dict[str, asyncio.Event] = {}

            @socket.on("aiChunk")  # type: ignore[untyped-decorator]
            async def chunk(data: dict[str, Any]) -> None:
                arrivals.setdefault(data["requestId"], {}).setdefault("first", time.perf_counter())

            @socket.on("aiDone")  # type: ignore[untyped-decorator]
            async def done(data: dict[str, Any]) -> None:
                arrivals.setdefault(data["requestId"], {})["done"] = time.perf_counter()
                finished.setdefault(data["requestId"], asyncio.Event()).set()

            await socket.connect(url, auth={"token": registered["access_token"]}, transports=["websocket"])
            firsts, wholes = [], []
            for _ in range(streams):
                asked = await http.post(
                    f"/api/inbox/conversations/{chat}/ai/improve",
                    headers=admin,
                    json={"text": "draft", "tone": "shorter"},
                )
                request_id = asked.json()["request_id"]
                await asyncio.wait_for(finished.setdefault(request_id, asyncio.Event()).wait(), 30)
                written_first, written_last = await last_written(http, server_url)
                firsts.append((arrivals[request_id]["first"] - written_first) * 1000)
                wholes.append((arrivals[request_id]["done"] - written_last) * 1000)
            await socket.disconnect()
            return firsts, wholes
    finally:
        uvicorn_server.should_exit = True
        await task


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=40)
    parser.add_argument("--words", type=int, default=200)
    options = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    address = spawn.Queue()
    ai_process = spawn.Process(target=serve_ai, args=(options.words, address), daemon=True)
    ai_process.start()
    try:
        server_url = await asyncio.get_running_loop().run_in_executor(None, address.get, True, 60)
        direct = await baseline(server_url, options.streams)
        relayed = await through_hub(server_url, options.streams)
    finally:
        ai_process.terminate()
        ai_process.join()
    print(f"{options.streams} streams of {options.words} pieces each")
    describe("direct", *direct)
    describe("hub", *relayed)
    print(
        f"added by the hub: first piece p50 {statistics.median(relayed[0]) - statistics.median(direct[0]):.2f} ms,"
        f" whole answer p50 {statistics.median(relayed[1]) - statistics.median(direct[1]):.2f} ms"
        f" (ratio {statistics.median(relayed[1]) / max(statistics.median(direct[1]), 0.001):.1f}x)"
    )


if __name__ == "__main__":
    run(main())
