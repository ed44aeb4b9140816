"""On PostgreSQL a WhatsApp profile's keys live in the hub's database (schema `whatsapp`, the hub
login's alone), written and read by neonize's own store code: a profile whose process stops is
taken up by another process, with another data directory, and resumes its device from there.
Offline, so the pairing itself is what the store would hold after a scan: a device row."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import asyncpg

from channels.whatsapp.keys import store_url
from channels.whatsapp.sessions import sessions_of
from tests.conftest import (
    _asyncpg_dsn,
    eventually,
    make_settings,
    register,
    start_hub,
)
from tests.helpers.channels import paired_by_a_scan


async def test_a_profile_resumes_its_device_from_the_database_in_another_process(
    tmp_path: Path, fresh_database: str, redis_url: str
) -> None:
    shared = {"HUB_SECRET_KEY": secrets.token_urlsafe(40), "HUB_TASK_QUEUE": f"hubtest{secrets.token_hex(4)}"}

    def settings_in(directory: str) -> object:
        return make_settings(
            tmp_path / directory,
            **shared,
            DATABASE_URL=fresh_database,
            REDIS_URL=redis_url,
            HUB_MIGRATE_ON_START="true",
            HUB_WHATSAPP_LEASE_SECONDS="2",
            HUB_WHATSAPP_RECONNECT_BASE_SECONDS="30",
        )

    first = await start_hub(settings_in("first"), kind="postgres")  # type: ignore[arg-type]
    try:
        organization = await register(first)
        async with first.client(organization.admin.token) as client:
            profile = (await client.post("/api/whatsapp/profiles", json={"name": "Shop line"})).json()
            connected = await client.post(
                "/api/whatsapp/connect", json={"profile_id": profile["id"], "wait_seconds": 0}
            )
            assert connected.status_code == 200, connected.text
        profile_id = uuid.UUID(profile["id"])
        owner = await asyncpg.connect(_asyncpg_dsn(fresh_database))
        try:

            async def store_made() -> bool:
                return await owner.fetchval("SELECT to_regclass('whatsapp.whatsmeow_device')") is not None

            # neonize's store made its tables, as the hub's login, in the hub's schema; no file.
            await eventually(store_made, within=20)
            login = first.settings.database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[0]
            owners = await owner.fetch(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'whatsapp'"
            )
            assert [row["tableowner"] for row in owners] == [login]
            assert not await owner.fetchval("SELECT has_schema_privilege('public', 'whatsapp', 'USAGE')")
            assert not list((tmp_path / "first").glob("whatsapp/*"))
            await paired_by_a_scan(fresh_database, profile_id)
        finally:
            await owner.close()
    finally:
        await first.stop()  # its lease is let go

    # Another process, with a data directory of its own, takes the profile up from the database.
    second = await start_hub(settings_in("second"), kind="postgres")  # type: ignore[arg-type]
    try:
        sessions = sessions_of(second.runtime)

        async def tried() -> bool:
            running = sessions.get(profile_id)
            return running is not None and running.attempts >= 1

        # Its first try to reach WhatsApp is over (offline, it waits 30 s for the next): then its
        # client is asked, once, which device it is (neonize's client is not to be asked while
        # it is being made).
        await eventually(tried, within=20)
        running = sessions.get(profile_id)
        assert running is not None
        assert running.client is not None
        me = await running.client.get_me()
        assert (me.JID.User, me.JID.Device, me.PushName) == ("966500000042", 7, "Shop line")

        # Neither the keys nor the store's address reach an answer.
        async with second.client(organization.admin.token) as client:
            shown = await client.get(f"/api/whatsapp/profiles/{profile_id}")
            assert shown.status_code == 200, shown.text
            assert "postgres://" not in shown.text
            assert bytes(range(32)).hex() not in shown.text
            assert store_url(second.settings) not in repr(second.settings)

            # Logged out: the device and everything of it leave the store.
            logged_out = await client.post(f"/api/whatsapp/profiles/{profile_id}/logout")
            assert logged_out.status_code == 200, logged_out.text
        owner = await asyncpg.connect(_asyncpg_dsn(fresh_database))
        try:
            assert await owner.fetchval("SELECT count(*) FROM whatsapp.whatsmeow_device") == 0
        finally:
            await owner.close()
    finally:
        await second.stop()
