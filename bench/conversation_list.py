"""How fast the inbox lists conversations, at the first page and deep into the list.

    .venv/bin/python bench/conversation_list.py [--conversations 50000] [--messages 1000000] [--runs 200]

Fills a fresh PostgreSQL database (from TEST_DATABASE_URL) with one organization's customers,
conversations and messages, then times the hub's own listing (the service the API calls: tenant
session, row-level security, keyset cursor on last activity, labels, encoding to JSON) for the
first page and for page 1,000. The baseline in the same run is a raw asyncpg query for the same
rows plus msgspec encoding. Prints p50/p99 of each and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import fresh_database, local_hub

from hub import migrate
from hub.auth import CurrentUser
from hub.config import Settings
from hub.db import new_id
from hub.runtime import Runtime, activate
from inbox import services

PAGE = 50
MESSAGE_COLUMNS = [
    "id",
    "organization_id",
    "conversation_id",
    "channel_id",
    "direction",
    "kind",
    "text",
    "status",
    "external_id",
    "private",
    "send_attempts",
    "created_at",
    "updated_at",
]


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000


async def fill(dsn: str, conversations: int, messages: int) -> tuple[uuid.UUID, uuid.UUID]:
    connection = await asyncpg.connect(dsn)
    organization_id, user_id, channel_id = new_id(), new_id(), new_id()
    now = datetime.now(UTC)
    await connection.execute(
        "INSERT INTO organizations (id, name, slug, default_language, time_zone, created_at, updated_at)"
        " VALUES ($1, 'Bench', $2, 'ar', 'UTC', $3, $3)",
        organization_id,
        f"bench-{secrets.token_hex(3)}",
        now,
    )
    await connection.execute(
        "INSERT INTO users (id, organization_id, email, full_name, password_hash, role, is_active, created_at,"
        " updated_at) VALUES ($1, $2, $3, 'Bench Manager', 'x', 'manager', true, $4, $4)",
        user_id,
        organization_id,
        f"bench-{secrets.token_hex(4)}@example.test",
        now,
    )
    await connection.execute(
        "INSERT INTO channels (id, organization_id, kind, name, state, config, secret, created_at, updated_at)"
        " VALUES ($1, $2, 'api', 'Bench', 'ready', '{}', 's', $3, $3)",
        channel_id,
        organization_id,
        now,
    )
    customers = [
        (new_id(), organization_id, f"Customer {n}", f"+9665{n:08d}", False, now, now)
        for n in range(conversations)
    ]
    await connection.copy_records_to_table(
        "customers",
        records=customers,
        columns=["id", "organization_id", "name", "phone", "opted_out", "created_at", "updated_at"],
    )
    rows = []
    for n, customer in enumerate(customers):
        last = now - timedelta(seconds=random.randint(0, 90 * 86400))
        rows.append(
            (
                new_id(),
                organization_id,
                customer[0],
                channel_id,
                "open",
                last,
                f"message {n}",
                n % 5,
                now,
                now,
            )
        )
    await connection.copy_records_to_table(
        "conversations",
        records=rows,
        columns=[
            "id",
            "organization_id",
            "customer_id",
            "channel_id",
            "status",
            "last_message_at",
            "last_message_preview",
            "unread_count",
            "created_at",
            "updated_at",
        ],
    )
    batch: list[tuple[Any, ...]] = []
    for n in range(messages):
        conversation = rows[n % conversations]
        batch.append(
            (
                new_id(),
                organization_id,
                conversation[0],
                channel_id,
                "inbound",
                "text",
                f"hello {n}",
                "received",
                f"ext-{n}",
                False,
                0,
                now,
                now,
            )
        )
        if len(batch) == 50_000:
            await connection.copy_records_to_table("messages", records=batch, columns=MESSAGE_COLUMNS)
            batch.clear()
    if batch:
        await connection.copy_records_to_table("messages", records=batch, columns=MESSAGE_COLUMNS)
    await connection.execute("ANALYZE")
    await connection.close()
    return organization_id, user_id


class Row(msgspec.Struct):
    id: uuid.UUID
    customer_id: uuid.UUID
    name: str
    phone: str | None
    status: str
    assignee_id: uuid.UUID | None
    last_message_at: datetime | None
    last_message_preview: str | None
    unread_count: int


RAW_FIRST = """
SELECT c.id, c.customer_id, u.name, u.phone, c.status, c.assignee_id, c.last_message_at, c.last_message_preview,
       c.unread_count
FROM conversations c JOIN customers u ON u.id = c.customer_id
WHERE c.organization_id = $1
ORDER BY c.last_message_at DESC, c.id DESC LIMIT 51
"""
RAW_AFTER = """
SELECT c.id, c.customer_id, u.name, u.phone, c.status, c.assignee_id, c.last_message_at, c.last_message_preview,
       c.unread_count
FROM conversations c JOIN customers u ON u.id = c.customer_id
WHERE c.organization_id = $1 AND (c.last_message_at, c.id) < ($2, $3)
ORDER BY c.last_message_at DESC, c.id DESC LIMIT 51
"""


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=50_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--page", type=int, default=1000)
    args = parser.parse_args()

    async with fresh_database() as dsn:
        settings = Settings.from_env(
            {
                "HUB_DATA_DIR": tempfile.mkdtemp(),
                "HUB_SECRET_KEY": secrets.token_urlsafe(40),
                **local_hub(),
                "DATABASE_URL": dsn,
            },
            read_dotenv=False,
        )
        await asyncio.to_thread(migrate.upgrade, settings)
        started = time.perf_counter()
        organization_id, user_id = await fill(dsn, args.conversations, args.messages)
        print(
            f"filled {args.conversations} conversations, {args.messages} messages in {time.perf_counter() - started:.0f} s"
        )

        runtime = Runtime.build(settings)
        activate(runtime)
        user = CurrentUser(
            id=user_id,
            organization_id=organization_id,
            email="",
            full_name="",
            role="manager",
            preferred_language=None,
            organization_language="ar",
            token_id="bench",
            token_expires_at=datetime.now(UTC),
        )
        deep_offset = PAGE * (args.page - 1)
        raw = await asyncpg.connect(dsn)
        anchor = await raw.fetchrow(
            "SELECT last_message_at, id FROM conversations WHERE organization_id = $1"
            " ORDER BY last_message_at DESC, id DESC OFFSET $2 LIMIT 1",
            organization_id,
            deep_offset - 1,
        )
        deep_cursor = services.conversation_cursor(anchor["last_message_at"], anchor["id"])

        async def hub_page(cursor: str | None) -> bytes:
            async with runtime.db.session(organization_id) as session:
                rows, _next = await services.list_conversations(
                    session,
                    user,
                    status=None,
                    assignee=None,
                    channel_id=None,
                    query=None,
                    cursor=cursor,
                    limit=PAGE,
                )
                return msgspec.json.encode(await services.conversation_views(session, rows))

        async def raw_page(after: Any) -> bytes:
            if after is None:
                records = await raw.fetch(RAW_FIRST, organization_id)
            else:
                records = await raw.fetch(RAW_AFTER, organization_id, after["last_message_at"], after["id"])
            return msgspec.json.encode([Row(**dict(r)) for r in records[:PAGE]])

        results: dict[str, list[float]] = {}
        for label, call in (
            ("hub first page", lambda: hub_page(None)),
            (f"hub page {args.page}", lambda: hub_page(deep_cursor)),
            ("raw first page", lambda: raw_page(None)),
            (f"raw page {args.page}", lambda: raw_page(anchor)),
        ):
            for _ in range(10):
                await call()
            samples = []
            for _ in range(args.runs):
                began = time.perf_counter()
                await call()
                samples.append(time.perf_counter() - began)
            results[label] = samples
        await raw.close()
        await runtime.close()

        print(f"{'':22}{'p50 ms':>10}{'p99 ms':>10}")
        for label, samples in results.items():
            print(f"{label:22}{percentile(samples, 0.5):10.2f}{percentile(samples, 0.99):10.2f}")
        hub_first, hub_deep = results["hub first page"], results[f"hub page {args.page}"]
        raw_first, raw_deep = results["raw first page"], results[f"raw page {args.page}"]
        print(
            f"hub page {args.page} / first page, p99: {percentile(hub_deep, 0.99) / percentile(hub_first, 0.99):.2f}"
        )
        print(f"hub / raw, first page p99: {percentile(hub_first, 0.99) / percentile(raw_first, 0.99):.2f}")
        print(
            f"hub / raw, page {args.page} p99: {percentile(hub_deep, 0.99) / percentile(raw_deep, 0.99):.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
