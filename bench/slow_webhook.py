"""One tenant's hanging webhook against everyone else's traffic, on the embedded hub.

    .venv/bin/python bench/slow_webhook.py [--replies 200] [--posts 200]

One organization's API channel points at a receiver that never answers (it holds every request
until the end of the run); 200 replies are queued to it. Meanwhile another organization's
system posts signed messages, one at a time, from a separate process, and asks `/health`. The
baseline is the same posts and health checks on the same hub before anything hangs. Printed: p50
and p99 of both, idle and while the webhook hangs, their ratio, and any 5xx.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import local_hub, register, run, serve

from channels.api import signature
from hub.app import create_app
from hub.config import Settings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def post_and_check(url: str, inbound: str, secret: str, posts: int, tag: str) -> dict[str, list[float]]:
    """Runs in a child process: signed posts and health checks, one after the other."""

    async def main() -> dict[str, list[float]]:
        found: dict[str, list[float]] = {"post": [], "health": [], "errors": []}
        async with httpx.AsyncClient(timeout=120) as client:
            for n in range(posts):
                body = json.dumps(
                    {"external_id": f"{tag}-{n}", "from": "+966501234567", "text": "hi"}
                ).encode()
                headers = {
                    "Content-Type": "application/json",
                    "X-Hub-Signature": signature(secret, body, int(time.time())),
                }
                began = time.perf_counter()
                answer = await client.post(inbound, content=body, headers=headers)
                found["post"].append((time.perf_counter() - began) * 1000)
                if answer.status_code >= 500:
                    found["errors"].append(answer.status_code)
                began = time.perf_counter()
                health = await client.get(f"{url}/health")
                found["health"].append((time.perf_counter() - began) * 1000)
                if health.status_code >= 500:
                    found["errors"].append(health.status_code)
        return found

    return asyncio.run(main())


async def elsewhere(*args: object) -> dict[str, list[float]]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, post_and_check, *args)


async def main(arguments: argparse.Namespace) -> None:
    release = asyncio.Event()
    held = 0

    async def hang(request: web.Request) -> web.Response:
        nonlocal held
        await request.read()
        held += 1
        await release.wait()
        return web.json_response({})

    receiver = web.Application()
    receiver.router.add_post("/hook", hang)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]

    settings = Settings.from_env(
        {
            "HUB_DATA_DIR": tempfile.mkdtemp(),
            "HUB_LOG_LEVEL": "WARNING",
            "HUB_API_RATE_LIMIT": str(10**9),
            **local_hub(),
        },
        read_dotenv=False,
    )
    server, task, url = await serve(create_app(settings))
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        slow, other = await register(client, "Slow"), await register(client, "Other")
        channels = {}
        for name, org in (("slow", slow), ("other", other)):
            made = await client.post(
                "/api/channels",
                json={"type": "api", "name": name, "webhook_url": hook},
                headers={"Authorization": f"Bearer {org['access_token']}"},
            )
            channels[name] = made.json()
        idle = await elsewhere(
            url, channels["other"]["inbound_url"], channels["other"]["secret"], arguments.posts, "idle"
        )
        # The slow tenant's customers write, and its team answers each: every reply hangs.
        slow_headers = {"Authorization": f"Bearer {slow['access_token']}"}
        conversations = []
        for n in range(20):
            body = json.dumps({"external_id": f"s-{n}", "from": f"+9665099900{n:02d}", "text": "hi"}).encode()
            secret = channels["slow"]["secret"]
            posted = await client.post(
                channels["slow"]["inbound_url"],
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature": signature(secret, body, int(time.time())),
                },
            )
            conversations.append(posted.json()["conversation_id"])
        for n in range(arguments.replies):
            await client.post(
                f"/api/inbox/conversations/{conversations[n % len(conversations)]}/messages",
                json={"text": f"answer {n}"},
                headers=slow_headers,
            )
        while held < settings.outbound_per_channel:  # noqa: ASYNC110 - the receiver counts, no event
            await asyncio.sleep(0.05)
        busy = await elsewhere(
            url, channels["other"]["inbound_url"], channels["other"]["secret"], arguments.posts, "busy"
        )
        release.set()
        await asyncio.sleep(2)  # the held replies are answered and recorded before the hub stops
    server.should_exit = True
    await task
    await runner.cleanup()

    print(
        f"slow webhook: {arguments.replies} replies hanging at one tenant; {arguments.posts} posts and health checks by another"
    )
    print(
        f"{'':24} {'idle p50':>9} {'idle p99':>9} {'hanging p50':>12} {'hanging p99':>12} {'ratio p50':>10}"
    )
    for kind in ("post", "health"):
        a, b = idle[kind], busy[kind]
        print(
            f"{kind + ' (ms)':24} {statistics.median(a):9.1f} {percentile(a, 0.99):9.1f} "
            f"{statistics.median(b):12.1f} {percentile(b, 0.99):12.1f} {statistics.median(b) / statistics.median(a):10.2f}"
        )
    print(
        f"5xx answers: idle {len(idle['errors'])}, hanging {len(busy['errors'])}; requests held at the receiver: {held}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--posts", type=int, default=200)
    run(main(parser.parse_args()))
