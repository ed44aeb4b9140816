"""From a customer's message to the agents' screens: end-to-end latency and lost deliveries.

    .venv/bin/python bench/inbound_to_agent.py [--rates 50,100,200,500] [--seconds 5] [--postgres] [--new-senders]

200 sockets (20 managers, 180 agents) stay connected while messages arrive through the API channel
at a constant rate, each carrying its send time. Every message reaches the 20 managers and the one
agent its conversation was assigned to in turn, so 21 deliveries are expected per message. The
baseline in the same run is a bare python-socketio server on the same ASGI server that receives
the same HTTP post and emits to the same number of sockets, without checking, storing or assigning
anything. Each of the 900 customers writes once before the measured runs, so those measure
conversations in progress. The load (posts and sockets) runs in a separate process, with lean
clients (`harness.LeanPoster`, `harness.LeanSocket`): with httpx and the full Socket.IO client the
load process needed more CPU than the server and set the figures itself. Prints, for
both and their ratios: the server's CPU time per message, p50/p99/p99.9 latency of accepted
messages, lost deliveries, sockets the server dropped, and posts refused (503) with their share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import resource
import secrets
import statistics
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import socketio
from litestar import Litestar, Request, post

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    LeanPoster,
    LeanSocket,
    bench_hub,
    fresh_database,
    organization_with_channel,
    people,
    run,
    serve,
)

from channels.api import signature
from hub.app import create_app
from hub.config import Settings
from hub.logs import configure_logging

MANAGERS, AGENTS = 20, 180
SENDERS = 900  # distinct customers, so conversations spread over the agents
# Each message's text is "<key>|<send time>"; a delivery's raw packet is searched for it.
SENT_MARK = re.compile(r'"text": ?"([^"|]+)\|([0-9.]+)"')


# The load, in its own process


async def post_one(
    http: LeanPoster,
    target: dict[str, Any],
    prefix: str,
    n: int,
    rate: int,
    begin: float,
    run: int = 0,
) -> int:
    """Post message n at its place in the constant rate; its text carries the send time. With
    `new_senders`, each measured message (run 1 and on) comes from a number never seen before."""
    await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
    text = f"{prefix}-{n}|{time.time()}"
    sender = f"+9665{run}{n:07d}" if run and target.get("new_senders") else f"+96650{n % SENDERS:07d}"
    body = json.dumps({"external_id": f"{prefix}-{n}", "from": sender, "text": text}).encode()
    headers = {"Content-Type": "application/json"}
    if target.get("secret"):
        headers["X-Hub-Signature"] = signature(target["secret"], body, int(time.time()))
    return await http.post(target["post_url"], body, headers)


async def run_load(
    target: dict[str, Any], rates: list[int], seconds: float, marks: Any
) -> dict[int, dict[str, float]]:
    received: dict[str, list[float]] = {}

    def on_message(frame: str) -> None:
        now = time.time()
        found = SENT_MARK.search(frame)
        if found is not None:
            received.setdefault(found[1], []).append(now - float(found[2]))

    sockets = [LeanSocket(target["url"], auth, "newMessage", on_message) for auth in target["sockets"]]
    for socket in sockets:
        await socket.connect()

    def dropped() -> int:  # sockets the server let go of (a busy server must keep them all)
        return sum(1 for socket in sockets if socket.dropped)

    await asyncio.sleep(1)
    results = {}
    http = LeanPoster(target["post_url"], connections=100)
    # Every customer writes once first, unmeasured: the runs measure conversations in progress,
    # the usual case, rather than first contacts (which also create the customer).
    warm = asyncio.Semaphore(20)

    async def first_contact(n: int) -> None:
        async with warm:
            # Posted again when refused, as a sender does after Retry-After: every customer
            # is known before the measured runs.
            for _attempt in range(120):
                if await post_one(http, target, "warm", n, 10**6, time.perf_counter()) == 202:
                    break
                await asyncio.sleep(0.5)

    await asyncio.gather(*(first_contact(n) for n in range(SENDERS)))
    await asyncio.sleep(3)
    for run_number, rate in enumerate(rates, start=1):
        received.clear()
        dropped_before = dropped()
        count = int(rate * seconds)
        prefix = secrets.token_hex(3)
        begin = time.perf_counter() + 0.2
        posts = []
        marks.put(("begin", rate))
        for n in range(count):
            posts.append(asyncio.create_task(post_one(http, target, prefix, n, rate, begin, run_number)))
        statuses = await asyncio.gather(*posts)
        # Let the backlog arrive: wait until nothing new has come for 3 s (at most two minutes).
        settled, last_total = time.perf_counter(), -1
        while time.perf_counter() - settled < 120:
            await asyncio.sleep(3)
            total = sum(len(values) for values in received.values())
            if total == last_total:
                break
            last_total = total
        marks.put(("end", rate))
        latencies = sorted(v for values in received.values() for v in values)
        # A post turned away (503) was never acknowledged: its sender posts it again later, so
        # only accepted posts owe deliveries.
        expected = sum(1 for status in statuses if status == 202) * (MANAGERS + 1)
        failures = sorted(status for status in statuses if status not in (202, 503))
        if failures:  # 0: the connection broke off; else the status the server answered
            print(f"  {rate}/s: posts failed with {failures}", file=sys.stderr)
        results[rate] = {
            "p50": statistics.median(latencies) * 1000 if latencies else float("nan"),
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan"),
            "p999": latencies[int(len(latencies) * 0.999) - 1] * 1000 if latencies else float("nan"),
            "lost": expected - len(latencies),
            "expected": expected,
            "refused": sum(1 for status in statuses if status == 503),
            "failed": len(failures),
            "posts": count,
            "dropped": dropped() - dropped_before,
        }
    await http.close()
    for socket in sockets:
        await socket.close()
    return results


def load_in_child(
    target: dict[str, Any], rates: list[int], seconds: float, marks: Any
) -> dict[int, dict[str, float]]:
    return run(run_load(target, rates, seconds, marks))


def cpu_seconds() -> float:
    """CPU time used so far by this process (the server), all its threads, not the load's."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def load_elsewhere(
    target: dict[str, Any], rates: list[int], seconds: float, cpu: Any = cpu_seconds
) -> dict[int, dict[str, float]]:
    """The figures per rate, with the server's CPU milliseconds per message while that rate ran.

    The load marks the start and end of each rate; the CPU time of this process between the two
    marks is what the server spent on those messages (connecting the sockets is left out).
    """
    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, ProcessPoolExecutor(1, mp_context=spawn) as pool:
        marks = manager.Queue()
        started: dict[int, float] = {}
        used: dict[int, float] = {}

        async def watch() -> None:
            while len(used) < len(rates):
                kind, rate = await loop.run_in_executor(None, marks.get)
                if kind == "begin":
                    started[rate] = cpu()
                else:
                    used[rate] = cpu() - started[rate]

        watcher = asyncio.create_task(watch())
        results = await loop.run_in_executor(pool, load_in_child, target, rates, seconds, marks)
        await watcher
    for rate in rates:
        results[rate]["cpu"] = used[rate] * 1000 / (rate * seconds)
    return results


# The hub


async def hub_target(url: str, app: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        registered, admin, channel = await organization_with_channel(client)
        await client.patch(
            "/api/inbox/settings", headers=admin, json={"auto_assign": True, "agent_cap": 1000}
        )
    organization = uuid.UUID(registered["organization"]["id"])
    tokens = await people(app.runtime, organization, [("manager", MANAGERS), ("agent", AGENTS)])
    return {
        "url": url,
        "sockets": [{"token": token} for token in tokens],
        "post_url": channel["inbound_url"],
        "secret": channel["secret"],
    }


# The baseline: a bare Socket.IO server, no checks, no storage


def baseline_app() -> Any:
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=None)
    agent_of_sender: dict[str, int] = {}

    @sio.event
    async def connect(sid: str, _environ: Any, auth: Any) -> None:
        await sio.enter_room(sid, auth["token"])

    @post("/inbound", status_code=202)
    async def inbound(request: Request[Any, Any, Any]) -> dict[str, str]:
        body = json.loads(await request.body())
        agent = agent_of_sender.setdefault(body["from"], len(agent_of_sender) % AGENTS)
        await sio.emit("newMessage", {"text": body["text"]}, to=["managers", f"agent-{agent}"])
        return {"message_id": body["external_id"]}

    return socketio.ASGIApp(sio, other_asgi_app=Litestar([inbound], logging_config=None))


def baseline_target(url: str) -> dict[str, Any]:
    sockets = [{"token": "managers"} for _ in range(MANAGERS)] + [
        {"token": f"agent-{n}"} for n in range(AGENTS)
    ]
    return {"url": url, "sockets": sockets, "post_url": f"{url}/inbound"}


def report(
    title: str,
    rates: list[int],
    hub: dict[int, dict[str, float]],
    bare: dict[int, dict[str, float]],
) -> None:
    print(f"\n{title}: {MANAGERS} managers + {AGENTS} agents, {MANAGERS + 1} deliveries per message")
    print_table(rates, [("hub", hub), ("bare", bare)])


def print_table(rates: list[int], rows: list[tuple[str, dict[int, dict[str, float]]]]) -> None:
    """p50/p99/p99.9 of accepted messages, deliveries lost, sockets dropped, posts refused (their
    share), posts whose connection failed and CPU per message, for each rate and row; the first row against the second."""
    print(
        f"{'rate':>6} {'':8}{'p50 ms':>10}{'p99 ms':>10}{'p99.9 ms':>10}{'lost':>8}{'of':>8}"
        f"{'dropped':>9}{'refused':>9}{'share':>7}{'failed':>8}{'CPU ms/msg':>12}"
    )
    for rate in rates:
        for name, results in rows:
            figures = results[rate]
            share = figures["refused"] / figures["posts"] if figures["posts"] else 0.0
            print(
                f"{rate:>6} {name:8}{figures['p50']:10.1f}{figures['p99']:10.1f}{figures['p999']:10.1f}"
                f"{figures['lost']:8.0f}{figures['expected']:8.0f}{figures['dropped']:9.0f}"
                f"{figures['refused']:9.0f}{share:7.0%}{figures['failed']:8.0f}{figures['cpu']:12.2f}"
            )
        first, second = rows[0][1][rate], rows[1][1][rate]
        print(
            f"{rate:>6} {'ratio':8}{first['p50'] / second['p50']:10.2f}"
            f"{first['p99'] / second['p99']:10.2f}{first['p999'] / second['p999']:10.2f}"
            f"{'':49}{first['cpu'] / second['cpu']:12.2f}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="50,100,200,500")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument(
        "--postgres", action="store_true", help="PostgreSQL and Redis from TEST_DATABASE_URL/TEST_REDIS_URL"
    )
    parser.add_argument(
        "--new-senders",
        action="store_true",
        help="every measured message from a number never seen before (customer, conversation, assignment)",
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]

    # The load's one client process falls seconds behind reading 4,000+ events a second at the
    # higher rates; its sockets may lag instead of being closed as clients that stopped reading.
    environ = bench_hub(HUB_SOCKET_MAX_QUEUED=str(10**6))
    async with contextlib.AsyncExitStack() as stack:  # a fresh database, dropped at the end
        if args.postgres:
            environ["DATABASE_URL"] = await stack.enter_async_context(fresh_database())
            environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
            environ["HUB_MIGRATE_ON_START"] = "true"
        settings = Settings.from_env(environ, read_dotenv=False)
        configure_logging(settings)

        app = create_app(settings)
        server, task, url = await serve(app)
        target = {**await hub_target(url, app), "new_senders": args.new_senders}
        hub_results = await load_elsewhere(target, rates, args.seconds)
        server.should_exit = True
        await task

        server, task, url = await serve(baseline_app())
        bare_results = await load_elsewhere(baseline_target(url), rates, args.seconds)
        server.should_exit = True
        await task

        report(
            ("PostgreSQL + Redis" if args.postgres else "embedded (SQLite)")
            + (", every message from a new sender" if args.new_senders else ""),
            rates,
            hub_results,
            bare_results,
        )


if __name__ == "__main__":
    run(main())
