"""Campaign sending: pacing held across worker processes, exactly once through worker deaths.

    .venv/bin/python bench/campaign_pacing.py [--channels 20] [--per-channel 200] [--gap 0.1]

A scaled hub (PostgreSQL, Redis, a `hub scheduler` and real `hub worker` processes) sends one
campaign through `--channels` API channels to a business system in another process that answers
in 50-300 ms, each channel paced at one message per `--gap` seconds. Run with 1 and with 3 worker
processes, then with 3 workers of which one is killed (SIGKILL) three times during the campaign.
Beside it, the baseline: a bare asyncio loop in this process pacing the same sends to the same
system with one pooled HTTP client, and no database, no claims, no records.

Printed: gap violations per channel (two sends of a channel closer than the gap), the rate
achieved against the one configured, duplicates, CPU seconds per 1,000 sends, progress events per
second, and, for the run with deaths, lost recipients.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import fresh_database, local_hub, register, run, serve

from hub.app import create_app
from hub.config import Settings

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User and system CPU a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Children:
    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment
        self.workers: list[subprocess.Popen[bytes]] = []
        self.others: list[subprocess.Popen[bytes]] = []
        self.cpu_of_killed = 0.0

    def start(self, command: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", command],
            cwd=ROOT,
            env=self.environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        (self.workers if command == "worker" else self.others).append(process)
        return process

    def kill_a_worker(self) -> None:
        victim = next(w for w in self.workers if w.poll() is None)
        self.cpu_of_killed += cpu_seconds(victim.pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait()

    def worker_cpu(self) -> float:
        return self.cpu_of_killed + sum(cpu_seconds(w.pid) for w in self.workers if w.poll() is None)

    def stop(self) -> None:
        for process in self.workers + self.others:
            if process.poll() is None:
                process.terminate()
        for process in self.workers + self.others:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.workers, self.others, self.cpu_of_killed = [], [], 0.0


def numbers_csv(count: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "phone"])
    for n in range(count):
        writer.writerow([f"Customer {n}", f"+9665{n:08d}"])
    return out.getvalue().encode()


async def wait_for(check: Any, within: float, every: float = 0.2) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(every)
    raise TimeoutError("the campaign did not finish in time")


async def campaign_run(
    client: httpx.AsyncClient,
    hub_url: str,
    token: str,
    children: Children,
    database: str,
    receiver: str,
    *,
    channel_ids: list[str],
    media_id: str,
    workers: int,
    kills: int = 0,
) -> dict[str, Any]:
    await client.post(f"{receiver}/reset")
    children.start("scheduler")
    for _ in range(workers):
        children.start("worker")
    created = (
        await client.post(
            "/api/campaigns",
            json={
                "name": f"Bench {workers} workers{', deaths' if kills else ''}",
                "channel_ids": channel_ids,
                "template": {"ar": "{مرحبا|أهلا} {{name}}، عرضنا لك هذا الأسبوع"},
                "audience": {"media_id": media_id},
            },
        )
    ).json()

    async def counted() -> Any:
        found = (await client.get(f"/api/campaigns/{created['id']}")).json()
        return found if found["audience_status"] == "ready" else None

    campaign = await wait_for(counted, 120)
    progress: list[float] = []
    sio = socketio.AsyncClient(reconnection=False)

    @sio.on("campaignProgress")
    async def on_progress(data: Any) -> None:
        if data["campaignId"] == campaign["id"]:
            progress.append(time.monotonic())

    await sio.connect(hub_url, auth={"token": token}, transports=["websocket"])
    cpu_before = children.worker_cpu()
    began = time.monotonic()
    await client.post(f"/api/campaigns/{campaign['id']}/start")

    async def completed() -> Any:
        found = (await client.get(f"/api/campaigns/{campaign['id']}")).json()
        return found if found["status"] == "completed" else None

    if kills:
        expected = campaign["total"] / len(channel_ids) * float(os.environ.get("BENCH_GAP", "0.1"))
        for _ in range(kills):
            await asyncio.sleep(expected / (kills + 1))
            children.kill_a_worker()
            children.start("worker")
    finished = await wait_for(completed, 600)
    took = time.monotonic() - began
    cpu = children.worker_cpu() - cpu_before
    await asyncio.sleep(0.5)
    await sio.disconnect()
    children.stop()
    stats = (await client.get(f"{receiver}/stats")).json()
    connection = await asyncpg.connect(database)
    rows = await connection.fetch(
        "SELECT channel_id::text AS channel, claimed_at, status FROM campaign_recipients "
        "WHERE campaign_id = $1 ORDER BY channel_id, claimed_at",
        campaign["id"],
    )
    await connection.close()
    return {
        "campaign": finished,
        "rows": rows,
        "stats": stats,
        "took": took,
        "cpu": cpu,
        "progress": progress,
    }


def pacing_figures(moments_by_channel: dict[str, list[float]], gap: float) -> tuple[int, float, float]:
    """Violations (sends closer than the gap), mean and worst shortfall of the achieved rate."""
    violations, errors = 0, []
    for moments in moments_by_channel.values():
        moments = sorted(moments)
        violations += sum(1 for a, b in itertools.pairwise(moments) if b - a < gap - 1e-6)
        if len(moments) > 1:
            achieved = (len(moments) - 1) / (moments[-1] - moments[0])
            errors.append(abs(achieved * gap - 1))
    return violations, sum(errors) / len(errors), max(errors)


def hub_figures(result: dict[str, Any], gap: float) -> dict[str, Any]:
    claims: dict[str, list[float]] = {}
    for row in result["rows"]:
        if row["claimed_at"] is not None:
            claims.setdefault(row["channel"], []).append(row["claimed_at"].timestamp())
    violations, mean_error, worst_error = pacing_figures(claims, gap)
    arrivals = [m for entries in result["stats"].values() for _, m in entries]
    duplicates = len(arrivals) - len(set(arrivals))
    sent = sum(1 for row in result["rows"] if row["status"] == "sent")
    lost = len(result["rows"]) - sent
    progress = result["progress"]
    span = (progress[-1] - progress[0]) if len(progress) > 1 else result["took"]
    return {
        "violations": violations,
        "mean_error": mean_error,
        "worst_error": worst_error,
        "duplicates": duplicates,
        "lost": lost,
        "sent": sent,
        "cpu_per_1000": result["cpu"] / max(sent, 1) * 1000,
        "progress_per_second": len(progress) / span if span else 0.0,
        "took": result["took"],
    }


async def baseline(receiver: str, channels: int, per_channel: int, gap: float) -> dict[str, Any]:
    """The same sends from a bare asyncio loop: each channel a coroutine firing at its pace."""
    starts: dict[str, list[float]] = {}
    cpu_before, began = time.process_time(), time.monotonic()
    async with httpx.AsyncClient(timeout=15, limits=httpx.Limits(max_connections=None)) as client:
        in_flight: set[asyncio.Task[Any]] = set()

        async def channel(n: int) -> None:
            name = f"base{n}"
            starts[name] = []
            first = last = time.monotonic()
            for k in range(per_channel):
                # The same rule as the hub's: the planned moment, and never closer than the gap.
                due = max(first + k * gap, last + gap) if k else first
                while (now := time.monotonic()) < due:  # noqa: ASYNC110 - waits for a moment, not an event
                    await asyncio.sleep(due - now)
                last = now
                starts[name].append(now)
                body = {
                    "type": "message",
                    "message_id": secrets.token_hex(8),
                    "to": f"+9665{k:08d}",
                    "text": "hi",
                }
                task = asyncio.create_task(client.post(f"{receiver}/hook/{name}", json=body))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)

        await asyncio.gather(*(channel(n) for n in range(channels)))
        await asyncio.gather(*in_flight)
    took, cpu = time.monotonic() - began, time.process_time() - cpu_before
    violations, mean_error, worst_error = pacing_figures(starts, gap)
    sends = channels * per_channel
    return {
        "violations": violations,
        "mean_error": mean_error,
        "worst_error": worst_error,
        "duplicates": 0,
        "cpu_per_1000": cpu / sends * 1000,
        "took": took,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--per-channel", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.1)
    args = parser.parse_args()
    os.environ["BENCH_GAP"] = str(args.gap)
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    port = free_port()
    receiver_process = subprocess.Popen(  # noqa: ASYNC220 - runs for the whole benchmark
        [sys.executable, str(Path(__file__).with_name("webhook_receiver.py")), str(port), "0.05", "0.3"]
    )
    receiver = f"http://127.0.0.1:{port}"
    results: dict[str, dict[str, Any]] = {}
    try:
        async with fresh_database() as database:
            data_dir = tempfile.mkdtemp(prefix="hub-bench-")
            environment = {
                "DATABASE_URL": database,
                "REDIS_URL": redis_url,
                "HUB_DATA_DIR": data_dir,
                "HUB_SECRET_KEY": secrets.token_urlsafe(40),
                **local_hub(),
                "HUB_TASK_QUEUE": f"bench{secrets.token_hex(4)}",
                "HUB_MIGRATE_ON_START": "true",
                "HUB_LOG_LEVEL": "warning",
            }
            settings = Settings.from_env(environment, read_dotenv=False)
            server, serving, hub_url = await serve(create_app(settings))
            children = Children({**os.environ, **environment})
            try:
                async with httpx.AsyncClient(base_url=hub_url, timeout=120) as client:
                    await wait_for(lambda: _up(client, receiver), 20)
                    registered = await register(client)
                    token = registered["access_token"]
                    client.headers["Authorization"] = f"Bearer {token}"
                    channel_ids = []
                    for n in range(args.channels):
                        made = (
                            await client.post(
                                "/api/channels",
                                json={
                                    "type": "api",
                                    "name": f"Line {n}",
                                    "webhook_url": f"{receiver}/hook/{n}",
                                },
                            )
                        ).json()
                        channel_ids.append(made["id"])
                        await client.patch(
                            f"/api/campaigns/pacing/{made['id']}",
                            json={"min_gap_seconds": args.gap, "jitter_seconds": 0},
                        )
                    total = args.channels * args.per_channel
                    media = (
                        await client.post(
                            "/api/media", files={"data": ("people.csv", numbers_csv(total), "text/csv")}
                        )
                    ).json()
                    common = {"channel_ids": channel_ids, "media_id": media["id"]}
                    for label, workers, kills in (
                        ("1 worker", 1, 0),
                        ("3 workers", 3, 0),
                        ("3 workers, 3 deaths", 3, 3),
                    ):
                        print(f"running: {label} ...", flush=True)
                        outcome = await campaign_run(
                            client,
                            hub_url,
                            token,
                            children,
                            database,
                            receiver,
                            workers=workers,
                            kills=kills,
                            **common,
                        )
                        results[label] = hub_figures(outcome, args.gap)
                    await client.post(f"{receiver}/reset")
                print("running: baseline ...", flush=True)
                results["bare asyncio loop"] = await baseline(
                    receiver, args.channels, args.per_channel, args.gap
                )
            finally:
                children.stop()
                server.should_exit = True
                await serving
    finally:
        receiver_process.terminate()
        receiver_process.wait()
    report(results, args)


async def _up(client: httpx.AsyncClient, receiver: str) -> bool:
    try:
        return (await client.get(f"{receiver}/stats")).status_code == 200
    except httpx.HTTPError:
        return False


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    total = args.channels * args.per_channel
    print(
        f"\ncampaign of {total:,} recipients over {args.channels} API channels, gap {args.gap} s "
        f"(configured {1 / args.gap:.0f} messages/s a channel), answers in 50-300 ms"
    )
    header = f"{'':22}{'gap viol.':>10}{'rate err':>10}{'worst':>8}{'dupes':>7}{'lost':>6}{'CPU s/1k':>10}{'progress/s':>11}{'seconds':>9}"
    print(header)
    for label, figures in results.items():
        lost = figures.get("lost")
        progress = figures.get("progress_per_second")
        print(
            f"{label:22}{figures['violations']:10d}{figures['mean_error'] * 100:9.2f}%"
            f"{figures['worst_error'] * 100:7.2f}%{figures['duplicates']:7d}"
            f"{'' if lost is None else lost:>6}{figures['cpu_per_1000']:10.2f}"
            f"{'' if progress is None else f'{progress:.1f}':>11}{figures['took']:9.1f}"
        )
    base = results["bare asyncio loop"]["cpu_per_1000"]
    for label in ("1 worker", "3 workers"):
        if label in results and base:
            print(f"CPU per send, hub ({label}) / bare loop: {results[label]['cpu_per_1000'] / base:.1f}x")
    print(
        "(with deaths, the rate and CPU include the time the dead worker's channels waited for their lease)"
    )


if __name__ == "__main__":
    run(main())
