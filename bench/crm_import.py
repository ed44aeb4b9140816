"""Importing customers from CSV, and evaluating a segment over them, on PostgreSQL.

    .venv/bin/python bench/crm_import.py [--rows 100000]

The hub's import (a CSV uploaded through the API, read a thousand rows at a time: phone numbers
normalized, e-mails checked, duplicates looked up, attributes typed, each batch committed) against
asyncpg's `copy_records_to_table` of the same rows parsed from the same file, with no checks. Both
run in this process, each twice: once timed, once for the Python heap's peak (tracemalloc). Then a
segment (a tag and an attribute range) is counted over the imported customers.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import fresh_database, local_hub, run, serve

from crm import services
from crm.schemas import AttributeCondition, SegmentFilters
from hub.app import create_app
from hub.config import Settings
from hub.logs import configure_logging
from hub.runtime import bind

MAPPING = {"name": "name", "phone": "phone", "email": "email", "tags": "tags", "budget": "attributes.budget"}


def make_csv(rows: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["name", "phone", "email", "tags", "budget"])
    for n in range(rows):
        writer.writerow(
            [f"Customer {n}", f"05{n:08d}", f"c{n}@example.com", "vip" if n % 10 == 0 else "lead", n % 1000]
        )
    return out.getvalue()


async def hub_import(url: str, app: Any, text: str, *, trace: bool) -> tuple[float, int, uuid.UUID]:
    """Seconds (or, traced, peak bytes) of the hub's import; the organization it went into."""
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        registered = (
            await client.post(
                "/api/auth/register",
                json={
                    "organization_name": "Bench",
                    "full_name": "Admin",
                    "email": f"a-{secrets.token_hex(4)}@x.test",
                    "password": "a long bench passphrase",
                },
            )
        ).json()
        client.headers["Authorization"] = f"Bearer {registered['access_token']}"
        await client.patch("/api/settings/organization", json={"default_region": "SA"})
        await client.post("/api/crm/attributes", json={"key": "budget", "label": "Budget", "kind": "number"})
        media = (await client.post("/api/media", files={"data": ("c.csv", text.encode(), "text/csv")})).json()
        # Started through the API; carried out here, timed (no worker consumes the queue in this run).
        job = (
            await client.post("/api/crm/imports", json={"media_id": media["id"], "mapping": MAPPING})
        ).json()
    organization_id = uuid.UUID(registered["organization"]["id"])
    bind(app.runtime)
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    await services.run_import(app.runtime, organization_id, uuid.UUID(job["id"]))
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    async with app.runtime.db.session(organization_id) as session:
        done = await services.get_import(session, uuid.UUID(job["id"]))
        assert done.created == text.count("\n") - 1, (done.status, done.created, done.errors[:3])
    return seconds, peak, organization_id


async def baseline_copy(database_url: str, text: str, *, trace: bool) -> tuple[float, int]:
    """asyncpg COPY of the same rows into a table of the same columns, parsed from the same text."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    table = f"bench_copy_{secrets.token_hex(4)}"
    await connection.execute(
        f"CREATE TABLE {table} (id uuid primary key, name text, phone text, email text, tags json, attributes json)"
    )
    if trace:
        tracemalloc.start()
    began = time.perf_counter()
    reader = csv.DictReader(io.StringIO(text))
    records = (
        (
            uuid.uuid4(),
            row["name"],
            "+9665" + row["phone"][2:],
            row["email"],
            json.dumps([row["tags"]]),
            json.dumps({"budget": int(row["budget"])}),
        )
        for row in reader
    )
    await connection.copy_records_to_table(
        table, records=records, columns=["id", "name", "phone", "email", "tags", "attributes"]
    )
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    await connection.execute(f"DROP TABLE {table}")
    await connection.close()
    return seconds, peak


async def segment_timing(app: Any, organization_id: uuid.UUID, runs: int = 20) -> tuple[float, int]:
    filters = SegmentFilters(
        tags=["vip"],
        attributes=[AttributeCondition(key="budget", op="gte", value=500)],
    )
    times, count = [], 0
    for _ in range(runs):
        began = time.perf_counter()
        async with app.runtime.db.session(organization_id) as session:
            count, _opted_out = await services.count_segment(session, filters)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), count


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    async with fresh_database() as database_url:
        settings = Settings.from_env(
            {
                "HUB_DATA_DIR": tempfile.mkdtemp(prefix="hub-bench-"),
                "HUB_SECRET_KEY": secrets.token_urlsafe(40),
                **local_hub(),
                "HUB_LOG_LEVEL": "WARNING",
                "HUB_LOG_JSON": "true",
                "HUB_API_RATE_LIMIT": str(10**9),
                "HUB_TASK_QUEUE": f"hubbench{secrets.token_hex(3)}",
                "DATABASE_URL": database_url,
                "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
                "HUB_MIGRATE_ON_START": "true",
            },
            read_dotenv=False,
        )
        configure_logging(settings)
        text = make_csv(args.rows)
        app = create_app(settings)
        server, task, url = await serve(app)
        # Each is run twice: once timed, once under tracemalloc (which slows Python) for its peak.
        hub_seconds, _, organization_id = await hub_import(url, app, text, trace=False)
        _, hub_peak, _ = await hub_import(url, app, text, trace=True)
        segment_ms, members = await segment_timing(app, organization_id)
        server.should_exit = True
        await task
        copy_seconds, _ = await baseline_copy(settings.database_url, text, trace=False)
        _, copy_peak = await baseline_copy(settings.database_url, text, trace=True)

    print(f"\nimport of {args.rows:,} customers from CSV, PostgreSQL ({len(text) / 1e6:.1f} MB file)")
    print(f"{'':22}{'rows/s':>10}{'seconds':>10}{'peak MB':>10}")
    print(f"{'hub import':22}{args.rows / hub_seconds:10.0f}{hub_seconds:10.1f}{hub_peak / 1e6:10.1f}")
    print(f"{'asyncpg COPY':22}{args.rows / copy_seconds:10.0f}{copy_seconds:10.1f}{copy_peak / 1e6:10.1f}")
    print(
        f"{'ratio':22}{copy_seconds / hub_seconds:10.2f}{hub_seconds / copy_seconds:10.1f}{hub_peak / copy_peak:10.2f}"
    )
    print(f"segment (tag vip, budget >= 500) over them: {members:,} customers, median {segment_ms:.1f} ms")


if __name__ == "__main__":
    run(main())
