"""Many agents on one process: connecting, memory per socket, heartbeats, and fan-out latency.

    .venv/bin/python bench/many_sockets.py [--sockets 2000] [--minutes 10] [--rate 20] [--seconds 10]
                                           [--idle 10000] [--processes 4]

One embedded hub (SQLite) serves `--sockets` signed-in managers over websocket, opened by
`--processes` client processes (the load, apart from the server). Measured: the time to connect
them all and each one's connect time (p50/p99), the server's resident memory per socket, whether
every socket keeps its heartbeat for `--minutes` (sockets dropped), and `newMessage` latency
(p50/p99) from the post to every socket while customers write at `--rate` messages a second for
`--seconds` (every manager reads every message). Then `--idle` sockets are connected and left
idle, for the process's memory. The baseline in the same run is a bare python-socketio server
on the same ASGI server with the same sockets, emitting the same events to all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import socketio
from harness import bench_hub, organization_with_channel, people, run, serve
from litestar import Litestar, Request, post

from channels.api import signature
from hub.app import create_app
from hub.config import Settings
from hub.logs import configure_logging


def rss_mb() -> float:
    """This process's resident memory (the server's), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# The clients, in their own processes


async def hold_sockets(
    url: str, tokens: list[str], commands: Any, reports: Any, index: int
) -> dict[str, Any]:
    """Connect these sockets, report, and keep them until told to stop; the latencies they saw."""
    latencies: list[float] = []
    dropped = [0]
    clients = []
    connect_times = []
    started = time.perf_counter()
    for token in tokens:
        client = socketio.AsyncClient(reconnection=False)

        @client.on("newMessage")
        async def on_message(data: Any) -> None:
            text = data["message"]["text"] if "message" in data else data["text"]
            latencies.append(time.time() - float(text.split("|", 1)[1]))

        @client.on("disconnect")
        async def on_disconnect(*_reason: Any) -> None:
            dropped[0] += 1

        begin = time.perf_counter()
        await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=60)
        connect_times.append(time.perf_counter() - begin)
        clients.append(client)
    reports.put(("connected", index, time.perf_counter() - started))
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, commands.get)
        if command == "count":
            reports.put(("dropped", index, dropped[0]))
        elif command == "reset":
            latencies.clear()
            reports.put(("reset", index, 0))
        elif command == "stop":
            break
    result = {"latencies": list(latencies), "dropped": dropped[0], "connect_times": connect_times}
    for client in clients:
        await client.disconnect()
    return result


def clients_in_child(url: str, tokens: list[str], commands: Any, reports: Any, index: int) -> dict[str, Any]:
    return run(hold_sockets(url, tokens, commands, reports, index))


async def post_messages(post_url: str, secret: str | None, rate: int, seconds: float) -> int:
    """Customers write at a constant rate (each a new conversation's next message)."""
    accepted = 0
    async with httpx.AsyncClient(timeout=60) as http:
        begin = time.perf_counter()
        prefix = secrets.token_hex(3)

        async def one(n: int) -> None:
            nonlocal accepted
            await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
            body = json.dumps(
                {
                    "external_id": f"{prefix}-{n}",
                    "from": f"+96650{n % 50:07d}",
                    "text": f"{prefix}-{n}|{time.time()}",
                }
            ).encode()
            headers = {"Content-Type": "application/json"}
            if secret:
                headers["X-Hub-Signature"] = signature(secret, body, int(time.time()))
            response = await http.post(post_url, content=body, headers=headers)
            accepted += response.status_code == 202

        await asyncio.gather(*(one(n) for n in range(int(rate * seconds))))
    return accepted


def post_in_child(post_url: str, secret: str | None, rate: int, seconds: float) -> int:
    return run(post_messages(post_url, secret, rate, seconds))


# The run, from the server's process


async def measure(
    url: str, tokens: list[str], post_url: str, secret: str | None, args: argparse.Namespace, idle: list[str]
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")
    figures: dict[str, Any] = {}
    with spawn.Manager() as manager, ProcessPoolExecutor(args.processes + 1, mp_context=spawn) as pool:
        reports = manager.Queue()
        commands = [manager.Queue() for _ in range(args.processes)]
        shares = [tokens[i :: args.processes] for i in range(args.processes)]
        before = rss_mb()
        begin = time.perf_counter()
        held = [
            loop.run_in_executor(pool, clients_in_child, url, share, commands[i], reports, i)
            for i, share in enumerate(shares)
        ]
        for _ in shares:
            await loop.run_in_executor(None, reports.get)
        figures["connect_all_s"] = time.perf_counter() - begin
        await asyncio.sleep(2)
        figures["rss_per_socket_kb"] = (rss_mb() - before) * 1024 / len(tokens)
        figures["rss_mb"] = rss_mb()

        # Heartbeats: held for the minutes asked, then counted.
        await asyncio.sleep(args.minutes * 60)
        for queue in commands:
            queue.put("count")
        figures["dropped_while_idle"] = sum(
            [(await loop.run_in_executor(None, reports.get))[2] for _ in commands]
        )

        # Customers write; every socket hears every message.
        accepted = await loop.run_in_executor(pool, post_in_child, post_url, secret, args.rate, args.seconds)
        await asyncio.sleep(5)  # the last deliveries
        for queue in commands:
            queue.put("stop")
        results = [await future for future in held]
        latencies = sorted(v for result in results for v in result["latencies"])
        connect_times = sorted(v for result in results for v in result["connect_times"])
        figures["posts"] = int(args.rate * args.seconds)
        figures["accepted"] = accepted
        figures["expected"] = accepted * len(tokens)
        figures["delivered"] = len(latencies)
        figures["p50_ms"] = statistics.median(latencies) * 1000 if latencies else float("nan")
        figures["p99_ms"] = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
        figures["connect_p50_ms"] = statistics.median(connect_times) * 1000
        figures["connect_p99_ms"] = connect_times[int(len(connect_times) * 0.99) - 1] * 1000
        figures["dropped"] = sum(r["dropped"] for r in results)  # while held and while messages came

        if idle:
            await asyncio.sleep(2)
            before = rss_mb()
            idle_commands = [manager.Queue() for _ in range(args.processes)]
            idle_shares = [idle[i :: args.processes] for i in range(args.processes)]
            held = [
                loop.run_in_executor(pool, clients_in_child, url, share, idle_commands[i], reports, i)
                for i, share in enumerate(idle_shares)
            ]
            for _ in idle_shares:
                await loop.run_in_executor(None, reports.get)
            await asyncio.sleep(2)
            figures["idle_rss_mb"] = rss_mb()
            figures["idle_rss_per_socket_kb"] = (rss_mb() - before) * 1024 / len(idle)
            for queue in idle_commands:
                queue.put("stop")
            for future in held:
                await future
    return figures


async def hub_people(app: Any, url: str, count: int) -> tuple[list[str], str, str]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        registered, _admin, channel = await organization_with_channel(client)
    tokens = await people(app.runtime, uuid.UUID(registered["organization"]["id"]), [("manager", count)])
    return tokens, channel["inbound_url"], channel["secret"]


def bare_app() -> Any:
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=None)

    @sio.event
    async def connect(sid: str, _environ: Any, _auth: Any) -> None:
        await sio.enter_room(sid, "managers")

    @post("/inbound", status_code=202)
    async def inbound(request: Request[Any, Any, Any]) -> dict[str, str]:
        body = json.loads(await request.body())
        await sio.emit("newMessage", {"text": body["text"]}, to="managers")
        return {"message_id": body["external_id"]}

    return socketio.ASGIApp(sio, other_asgi_app=Litestar([inbound], logging_config=None))


def report(args: argparse.Namespace, hub: dict[str, Any], bare: dict[str, Any]) -> None:
    print(
        f"\n{args.sockets} manager sockets on one process, held {args.minutes} min; "
        f"{args.rate} msg/s for {args.seconds:g} s, each to every socket"
    )
    rows = [
        ("connect all (s)", "connect_all_s", "{:.1f}"),
        ("connect p50 (ms)", "connect_p50_ms", "{:.1f}"),
        ("connect p99 (ms)", "connect_p99_ms", "{:.1f}"),
        ("RSS (MB)", "rss_mb", "{:.0f}"),
        ("RSS per socket (KB)", "rss_per_socket_kb", "{:.1f}"),
        ("sockets dropped", "dropped", "{:.0f}"),
        ("posts accepted", "accepted", "{:.0f}"),
        ("  of", "posts", "{:.0f}"),
        ("deliveries", "delivered", "{:.0f}"),
        ("  of", "expected", "{:.0f}"),
        ("newMessage p50 (ms)", "p50_ms", "{:.1f}"),
        ("newMessage p99 (ms)", "p99_ms", "{:.1f}"),
        (f"RSS with {args.idle} idle more (MB)", "idle_rss_mb", "{:.0f}"),
        ("  per idle socket (KB)", "idle_rss_per_socket_kb", "{:.1f}"),
    ]
    print(f"{'':34}{'hub':>10}{'bare':>10}{'ratio':>8}")
    for label, key, form in rows:
        if key not in hub:
            continue
        ratio = hub[key] / bare[key] if bare.get(key) else float("nan")
        print(f"{label:34}{form.format(hub[key]):>10}{form.format(bare[key]):>10}{ratio:8.2f}")


async def one_server(args: argparse.Namespace) -> dict[str, Any]:
    """Serve one of the two in this process and measure it (so each has its own memory)."""
    if args.server == "bare":
        server, task, url = await serve(bare_app())
        figures = await measure(url, ["-"] * args.sockets, f"{url}/inbound", None, args, ["-"] * args.idle)
    else:
        environ = bench_hub()
        settings = Settings.from_env(environ, read_dotenv=False)
        configure_logging(settings)
        app = create_app(settings)
        server, task, url = await serve(app)
        tokens, post_url, secret = await hub_people(app, url, args.sockets + args.idle)
        figures = await measure(url, tokens[: args.sockets], post_url, secret, args, tokens[args.sockets :])
    server.should_exit = True
    await task
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--server", choices=["hub", "bare"], help="measure only this one and print JSON")
    args = parser.parse_args()
    if args.server:
        print(json.dumps(run(one_server(args))), flush=True)
        os._exit(0)  # the client processes' pool is done; nothing more to wait for
    figures = {}
    for name in ("hub", "bare"):  # each in a process of its own, from the same start
        answer = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--server", name],
            capture_output=True,
            text=True,
            check=True,
        )
        figures[name] = json.loads(answer.stdout.strip().splitlines()[-1])
    report(args, figures["hub"], figures["bare"])


if __name__ == "__main__":
    main()
