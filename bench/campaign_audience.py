"""A campaign of 100,000 recipients: built and sent with flat memory.

    .venv/bin/python bench/campaign_audience.py [--small 10000] [--large 100000] [--send-seconds 20]

On PostgreSQL, two organizations get `--small` and `--large` customers (inserted in SQL), each a
segment of all of them. For each, the hub builds a campaign's recipients from the segment (a
thousand a transaction) while tracemalloc follows this process's Python heap; beside it, the
baseline: the same recipients built the simple way, every matching row fetched into a list and
inserted in one statement. Then the large campaign sends for `--send-seconds` through an API
channel to a system in another process, and the heap is read every second: what a sender holds
does not depend on how many recipients are left.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign_pacing import free_port
from harness import fresh_database, local_hub, register, run, serve

from hub.app import create_app
from hub.config import Settings


async def organization_with_customers(client: httpx.AsyncClient, database: str, count: int) -> dict[str, Any]:
    registered = await register(client, f"Bench {count}")
    connection = await asyncpg.connect(database)
    await connection.execute(
        "INSERT INTO customers (id, organization_id, name, phone, opted_out, tags, attributes, score,"
        " score_factors, created_at, updated_at) SELECT gen_random_uuid(), $1, 'Customer ' || n,"
        " '+9665' || lpad(n::text, 8, '0'), false, '[\"bench\"]', '{}', 0, '[]', now(), now()"
        " FROM generate_series(1, $2) AS n",
        uuid.UUID(registered["organization"]["id"]),
        count,
    )
    await connection.execute("ANALYZE customers")
    await connection.close()
    headers = {"Authorization": f"Bearer {registered['access_token']}"}
    segment = (
        await client.post(
            "/api/crm/segments", json={"name": "All", "filters": {"tags": ["bench"]}}, headers=headers
        )
    ).json()
    return {"headers": headers, "segment": segment["id"], "organization_id": registered["organization"]["id"]}


async def hub_build(
    client: httpx.AsyncClient, org: dict[str, Any], channel_id: str
) -> tuple[float, int, dict[str, Any]]:
    """Seconds and peak heap bytes of the hub building the recipients of a segment."""
    tracemalloc.start()
    began = time.perf_counter()
    created = (
        await client.post(
            "/api/campaigns",
            headers=org["headers"],
            json={
                "name": "Everyone",
                "channel_ids": [channel_id],
                "template": {"ar": "مرحبا {{first_name}}"},
                "audience": {"segment_id": org["segment"]},
            },
        )
    ).json()
    while True:
        campaign = (await client.get(f"/api/campaigns/{created['id']}", headers=org["headers"])).json()
        if campaign["audience_status"] != "building":
            break
        await asyncio.sleep(0.2)
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak, campaign


async def naive_build(database: str, organization_id: str) -> tuple[float, int]:
    """The simple way: every matching customer fetched at once, then one insert of them all."""
    connection = await asyncpg.connect(database)
    table = f"bench_recipients_{secrets.token_hex(3)}"
    await connection.execute(
        f"CREATE TABLE {table} (id uuid primary key, customer_id uuid, phone text unique)"
    )
    tracemalloc.start()
    began = time.perf_counter()
    rows = await connection.fetch(
        "SELECT id, phone FROM customers WHERE organization_id = $1 AND opted_out = false"
        " AND tags::jsonb ? 'bench' AND phone IS NOT NULL",
        uuid.UUID(organization_id),
    )
    records = [(uuid.uuid4(), row["id"], row["phone"]) for row in rows]
    await connection.executemany(f"INSERT INTO {table} VALUES ($1, $2, $3)", records)
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    await connection.execute(f"DROP TABLE {table}")
    await connection.close()
    return seconds, peak


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--send-seconds", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    receiver = subprocess.Popen(  # noqa: ASYNC220 - runs for the whole benchmark
        [sys.executable, str(Path(__file__).with_name("webhook_receiver.py")), str(port), "0.0", "0.0"]
    )
    builds: dict[int, tuple[float, int, float, int]] = {}
    samples: list[tuple[float, int, int]] = []
    try:
        async with fresh_database() as database:
            environment = {
                "DATABASE_URL": database,
                "HUB_DATA_DIR": f"/tmp/hub-audience-{secrets.token_hex(3)}",
                "HUB_SECRET_KEY": secrets.token_urlsafe(40),
                **local_hub(),
                "HUB_MIGRATE_ON_START": "true",
                "HUB_LOG_LEVEL": "warning",
            }
            app = create_app(Settings.from_env(environment, read_dotenv=False))
            server, serving, url = await serve(app)
            try:
                async with httpx.AsyncClient(base_url=url, timeout=600) as client:
                    for size in (args.small, args.large):
                        org = await organization_with_customers(client, database, size)
                        channel = (
                            await client.post(
                                "/api/channels",
                                headers=org["headers"],
                                json={
                                    "type": "api",
                                    "name": "System",
                                    "webhook_url": f"http://127.0.0.1:{port}/hook/0",
                                },
                            )
                        ).json()
                        await client.patch(
                            f"/api/campaigns/pacing/{channel['id']}",
                            headers=org["headers"],
                            json={"min_gap_seconds": 0, "jitter_seconds": 0},
                        )
                        hub_seconds, hub_peak, campaign = await hub_build(client, org, channel["id"])
                        assert campaign["total"] == size, campaign
                        naive_seconds, naive_peak = await naive_build(database, org["organization_id"])
                        builds[size] = (hub_seconds, hub_peak, naive_seconds, naive_peak)
                    # The large campaign sends for a while; the heap is read every second.
                    await client.post(f"/api/campaigns/{campaign['id']}/start", headers=org["headers"])
                    tracemalloc.start()
                    began = time.monotonic()
                    while time.monotonic() - began < args.send_seconds:
                        await asyncio.sleep(1)
                        shown = (
                            await client.get(f"/api/campaigns/{campaign['id']}", headers=org["headers"])
                        ).json()
                        samples.append(
                            (time.monotonic() - began, tracemalloc.get_traced_memory()[0], shown["sent"])
                        )
                    tracemalloc.stop()
                    await client.post(f"/api/campaigns/{campaign['id']}/cancel", headers=org["headers"])
            finally:
                server.should_exit = True
                await serving
    finally:
        receiver.terminate()
        receiver.wait()
    print("\nbuilding a campaign's recipients from a segment, PostgreSQL, Python heap peak (tracemalloc)")
    print(
        f"{'recipients':>12}{'hub s':>9}{'hub peak MB':>13}{'all-at-once s':>15}{'all-at-once peak MB':>21}"
    )
    for size, (hub_seconds, hub_peak, naive_seconds, naive_peak) in builds.items():
        print(
            f"{size:12,}{hub_seconds:9.1f}{hub_peak / 1e6:13.1f}{naive_seconds:15.1f}{naive_peak / 1e6:21.1f}"
        )
    print(f"\nsending the {args.large:,}-recipient campaign: heap in use while it sends")
    print(f"{'second':>8}{'sent':>8}{'heap MB':>10}")
    for moment, heap, sent in samples[:: max(1, len(samples) // 10)]:
        print(f"{moment:8.0f}{sent:8,}{heap / 1e6:10.1f}")
    heaps = [heap for _, heap, _ in samples[2:]] or [0]
    print(f"heap from second 3 on: min {min(heaps) / 1e6:.1f} MB, max {max(heaps) / 1e6:.1f} MB")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    run(main())
