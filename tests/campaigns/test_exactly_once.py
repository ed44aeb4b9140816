"""Exactly once: a real `hub worker` process killed in the middle of a campaign never makes a
second message to anyone, and loses no one."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    RunningHub,
    child_environment,
    eventually,
    make_settings,
    register,
    start_hub,
)
from tests.helpers.campaigns import (
    CountingReceiver,
    api_channel,
    customers,
    fast_pacing,
    ready_campaign,
    serve_receiver,
)

ROOT = Path(__file__).resolve().parents[2]


class Processes:
    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment
        self.running: list[subprocess.Popen[str]] = []

    def start(self, command: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", command],
            cwd=ROOT,
            env=self.environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
async def scaled(
    tmp_path: Path, fresh_database: str, redis_url: str
) -> AsyncIterator[tuple[RunningHub, Processes]]:
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis_url, HUB_MIGRATE_ON_START="true"
    )
    web = await start_hub(settings, kind="postgres")  # serves HTTP only: the tasks run in the children
    # Sends are over within 5 s, so those a killed worker left are settled soon after.
    processes = Processes(child_environment(web.settings, HUB_DATA_DIR=str(tmp_path), HUB_SEND_SECONDS="5"))
    try:
        yield web, processes
    finally:
        await asyncio.to_thread(processes.stop_all)
        await web.stop()


@pytest.mark.slow
async def test_a_worker_killed_mid_campaign_sends_no_one_twice_and_loses_no_one(
    scaled: tuple[RunningHub, Processes],
) -> None:
    web, processes = scaled
    organization = await register(web)
    # Slow answers, so sends are always under way when the worker dies. One system keeps a
    # record of what it got; the other cannot tell.
    keeps_record = CountingReceiver(delay=(0.4, 0.8))
    no_record = CountingReceiver(delay=(0.4, 0.8), answers_lookups=False)
    runners = [await serve_receiver(keeps_record), await serve_receiver(no_record)]
    try:
        channels = [
            await api_channel(web, organization, keeps_record, "Shop"),
            await api_channel(web, organization, no_record, "Warehouse"),
        ]
        for channel in channels:
            await fast_pacing(
                web, organization.admin.token, channel["id"], min_gap_seconds=0.15, jitter_seconds=0
            )
        people = await customers(
            web, organization, [{"name": f"Person {i}", "phone": f"+9665800{i:05d}"} for i in range(60)]
        )
        processes.start("scheduler")
        first = processes.start("worker")
        campaign = await ready_campaign(
            web,
            organization.admin.token,
            {
                "name": "Exactly once",
                "channel_ids": [c["id"] for c in channels],
                "template": {"ar": "مرحبا {{name}}"},
                "audience": {"customer_ids": [p["id"] for p in people]},
            },
        )
        async with web.client(organization.admin.token) as client:
            assert (await client.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
        await eventually(lambda: len(keeps_record.messages) >= 6 and len(no_record.messages) >= 6, within=60)
        first.send_signal(signal.SIGKILL)  # no clean-up of any kind
        first.wait(timeout=10)
        processes.start("worker")

        async def settled() -> dict[str, Any] | None:
            async with web.client(organization.admin.token) as client:
                found = (await client.get(f"/api/campaigns/{campaign['id']}")).json()
            return found if found["status"] == "completed" else None

        done = await eventually(settled, within=150, interval=0.5)
        async with web.client(organization.admin.token) as client:
            results = (await client.get(f"/api/campaigns/{campaign['id']}/results")).json()
    finally:
        for runner in runners:
            await runner.cleanup()
    # Nobody got a message twice.
    for receiver in (keeps_record, no_record):
        assert set(receiver.ids().values()) == {1}
    by_channel = {row["channel_id"]: row for row in results["channels"]}
    shop, warehouse = by_channel[channels[0]["id"]], by_channel[channels[1]["id"]]
    # Where the channel keeps a record, every send in doubt was settled from it: all were sent.
    assert shop["unknown"] == 0
    assert shop["sent"] == len(keeps_record.messages)
    assert keeps_record.lookups > 0  # the worker did die in the middle of sends
    # Where it cannot tell, those sends are `unknown`, never tried again.
    assert warehouse["unknown"] > 0
    assert warehouse["sent"] + warehouse["unknown"] >= len(no_record.messages)
    # And no one was lost: every recipient ended sent or unknown, none pending or failed.
    counts = results["counts"]
    assert counts["pending"] == counts["sending"] == counts["failed"] == 0
    assert counts["sent"] + counts["unknown"] == 60 == done["total"]
