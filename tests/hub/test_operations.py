"""Running the hub: the command line, settings, migrations, health, OpenAPI, logs, audit, rate limits."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect

from hub import migrate
from hub.config import Settings, SettingsError
from hub.db import create_engine
from tests.conftest import (
    PASSWORD,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    RunningHub,
    _admin_execute,
    _with_database,
    add_member,
    as_hub_login,
    create_database,
    drop_database,
    free_port,
    make_settings,
    need,
    register,
    run_outside_loop,
    start_hub,
    unique_email,
)

ROOT = Path(__file__).resolve().parents[2]
HUB = [sys.executable, "-m", "hub.cli"]


def clean_environment(**extra: str) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "DATABASE_", "REDIS_", "SMTP_"))
    }
    environment.update(extra)
    return environment


def run_hub(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HUB, *args],
        cwd=ROOT,
        env=clean_environment(**environment),
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_hub_process(*args: str, **environment: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HUB, *args],
        cwd=ROOT,
        env=clean_environment(**environment),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def scratch_postgres() -> Iterator[str]:
    need("PostgreSQL", TEST_DATABASE_URL, 5432)
    name = create_database()
    yield _with_database(TEST_DATABASE_URL, name)
    drop_database(name)


@pytest.mark.slow
async def test_hub_serve_answers_health_on_the_port_it_was_given(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - a long-running child, stopped below
        [*HUB, "serve"],
        cwd=ROOT,
        env=clean_environment(HUB_DATA_DIR=str(tmp_path), PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        health = None
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    health = await client.get(f"http://127.0.0.1:{port}/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
        assert health is not None, "hub serve never answered"
        assert health.status_code == 200
        assert health.json() == {
            "status": "ok",
            "database": {"status": "ok", "detail": None},
            "redis": {"status": "off", "detail": "embedded mode"},
            "broker": {"status": "ok", "detail": "InMemoryBroker"},
        }
        # Embedded defaults: a SQLite file and a generated secret kept in the data directory.
        assert (tmp_path / "hub.sqlite3").exists()
        assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.to_thread(process.communicate, timeout=30)
    assert f"serving on http://127.0.0.1:{port}" in output
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"HUB_SECRET_KEY": "too-short"}, "HUB_SECRET_KEY"),
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1/x"}, "HUB_SECRET_KEY"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/0"}, "HUB_SECRET_KEY"),
        ({"DATABASE_URL": "mysql://root@localhost/hub"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"HUB_ACCESS_TOKEN_MINUTES": "soon"}, "HUB_ACCESS_TOKEN_MINUTES"),
        ({"HUB_LOG_JSON": "maybe"}, "HUB_LOG_JSON"),
        ({"PORT": "eighty"}, "PORT"),
    ],
)
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(
    tmp_path: Path, environment: dict[str, str], named: str
) -> None:
    result = run_hub("serve", HUB_DATA_DIR=str(tmp_path), **environment)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hub: ")
    assert named in lines[0]


def test_settings_read_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(f"HUB_DATA_DIR={tmp_path / 'data'}\nHUB_API_RATE_LIMIT=77\n")
    monkeypatch.chdir(tmp_path)
    for name in ("HUB_DATA_DIR", "HUB_API_RATE_LIMIT", "DATABASE_URL", "REDIS_URL", "HUB_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.api_rate_limit == 77
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'data' / 'hub.sqlite3'}"
    # The generated secret is kept, so tokens survive a restart.
    assert Settings.from_env().secret_key == settings.secret_key
    with pytest.raises(SettingsError, match="HUB_SECRET_KEY"):
        Settings.from_env({"DATABASE_URL": "postgres://x/y"}, read_dotenv=False)


async def _tables(settings: Settings) -> set[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


KERNEL_TABLES = {
    "organizations",
    "users",
    "invitations",
    "password_resets",
    "revoked_tokens",
    "module_settings",
    "audit_log",
    "event_outbox",
    "scheduled_jobs",
    "alembic_version",
}


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_migrations_run_from_empty_and_back(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    if database == "postgres":
        settings = make_settings(tmp_path, DATABASE_URL=request.getfixturevalue("scratch_postgres"))
    else:
        settings = make_settings(tmp_path)
    await asyncio.to_thread(migrate.upgrade, settings)
    assert await _tables(settings) >= KERNEL_TABLES
    await migrate.ensure_current(settings)
    await asyncio.to_thread(migrate.downgrade, settings, "base")
    assert await _tables(settings) <= {"alembic_version"}
    with pytest.raises(SettingsError, match="hub migrate"):
        await migrate.ensure_current(settings)
    await asyncio.to_thread(migrate.upgrade, settings)
    assert await _tables(settings) >= KERNEL_TABLES


@pytest.mark.slow
def test_scaled_serve_refuses_an_unmigrated_database_then_migrate_and_createadmin(
    tmp_path: Path, scratch_postgres: str
) -> None:
    environment = {
        "DATABASE_URL": as_hub_login(scratch_postgres),
        "HUB_DATABASE_OWNER_URL": scratch_postgres,
        "HUB_SECRET_KEY": "s" * 40,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_PUBLIC_URL": "https://hub.example.test",
    }
    refused = run_hub("serve", "--port", str(free_port()), **environment)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "hub: the database schema is not current: run `hub migrate` first"
    migrated = run_hub("migrate", **environment)
    assert migrated.returncode == 0, migrated.stderr
    assert "database at revision" in migrated.stdout
    email = unique_email("owner")
    created = run_hub(
        "createadmin",
        "--organization",
        "Night Shift",
        "--email",
        email,
        "--name",
        "Owner",
        HUB_ADMIN_PASSWORD=PASSWORD,
        **environment,
    )
    assert created.returncode == 0, created.stderr
    assert f"with admin {email}" in created.stdout
    again = run_hub(
        "createadmin",
        "--organization",
        "Other",
        "--email",
        email,
        "--name",
        "Owner",
        HUB_ADMIN_PASSWORD=PASSWORD,
        **environment,
    )
    assert again.returncode == 2
    assert "already exists" in again.stderr


@pytest.mark.slow
def test_serve_worker_and_scheduler_refuse_a_login_that_row_security_cannot_hold(
    tmp_path: Path, scratch_postgres: str
) -> None:
    as_owner = {
        "DATABASE_URL": scratch_postgres,  # the server's superuser
        "HUB_SECRET_KEY": "s" * 40,
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_PUBLIC_URL": "https://hub.example.test",
        "REDIS_URL": TEST_REDIS_URL,
    }
    assert run_hub("migrate", **as_owner).returncode == 0
    # A login that inherits the system role sees every organization on its own: refused too.
    login = f"hub_inherits_{secrets.token_hex(3)}"
    run_outside_loop(_admin_execute, f'CREATE ROLE "{login}" LOGIN INHERIT IN ROLE hub_system')
    inherits = {**as_owner, "DATABASE_URL": scratch_postgres.replace("postgres@", f"{login}@", 1)}
    try:
        started = [
            (command, expected, start_hub_process(*command, **environment))
            for command, expected, environment in [
                (["serve", "--port", str(free_port())], "is a superuser or bypasses row security", as_owner),
                (["worker"], "is a superuser or bypasses row security", as_owner),
                (["scheduler"], "is a superuser or bypasses row security", as_owner),
                (["worker"], "NOINHERIT", inherits),
            ]
        ]
        for command, expected, process in started:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 2, (command, stderr)
            assert expected in stderr, (command, stderr)
    finally:
        run_outside_loop(_admin_execute, f'DROP ROLE "{login}"')


async def test_a_superuser_login_runs_only_when_allowed_on_purpose(
    tmp_path: Path, scratch_postgres: str
) -> None:
    settings = make_settings(
        tmp_path,
        DATABASE_URL=scratch_postgres,
        HUB_DATABASE_OWNER_URL=scratch_postgres,
        HUB_MIGRATE_ON_START="true",
    )
    await asyncio.to_thread(migrate.upgrade, settings)
    with pytest.raises(SettingsError, match="superuser"):
        await migrate.ensure_safe_login(settings)
    await migrate.ensure_safe_login(settings.with_changes(allow_superuser=True))
    await migrate.ensure_safe_login(make_settings(tmp_path, DATABASE_URL=scratch_postgres))


async def test_health_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    need("PostgreSQL", TEST_DATABASE_URL, 5432)
    name = create_database()
    settings = make_settings(
        tmp_path, DATABASE_URL=_with_database(TEST_DATABASE_URL, name), HUB_MIGRATE_ON_START="true"
    )
    hub = await start_hub(settings, kind="postgres")
    try:
        async with hub.client() as client:
            assert (await client.get("/health")).status_code == 200
            await asyncio.to_thread(run_outside_loop, _admin_execute, f'DROP DATABASE "{name}" WITH (FORCE)')
            down = await client.get("/health")
        assert down.status_code == 503
        assert down.json()["status"] == "down"
        assert down.json()["database"]["status"] == "down"
    finally:
        await hub.stop()
        drop_database(name)


async def test_openapi_schema_and_request_ids(hub: RunningHub) -> None:
    async with hub.client() as client:
        schema = await client.get("/schema/openapi.json")
        health = await client.get("/health", headers={"X-Request-ID": "trace-123"})
        fresh = await client.get("/health")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in (
        "/api/auth/register",
        "/api/auth/login",
        "/api/users",
        "/api/users/invite",
        "/api/audit",
        "/health",
    ):
        assert path in paths
    assert health.headers["X-Request-ID"] == "trace-123"
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["X-Request-ID"])


async def test_audit_log_records_who_changed_what(hub: RunningHub) -> None:
    organization = await register(hub)
    agent = await add_member(hub, organization, "agent")
    async with hub.client(organization.admin.token) as client:
        await client.patch(f"/api/users/{agent.user_id}/role", json={"role": "manager"})
        await client.patch(
            "/api/settings/organization", json={"default_language": "en", "time_zone": "Asia/Riyadh"}
        )
        await client.patch("/api/settings/modules", json={"campaigns": False})
        bad_zone = await client.patch("/api/settings/organization", json={"time_zone": "Mars/Olympus"})
        assert bad_zone.status_code == 400
        assert bad_zone.json()["errors"][0]["field"] == "time_zone"
        first = await client.get("/api/audit", params={"limit": 3})
        rest = await client.get("/api/audit", params={"limit": 3, "cursor": first.json()["next_cursor"]})
        only_users = await client.get("/api/audit", params={"object_type": "user"})
        bad_cursor = await client.get("/api/audit", params={"cursor": "!!"})
    entries = first.json()["items"] + rest.json()["items"]
    actions = [e["action"] for e in entries]
    assert actions == [
        "settings.modules_changed",
        "organization.updated",
        "user.role_changed",
        "user.joined",
        "user.invited",
        "organization.registered",
    ]
    role_change = entries[2]
    assert role_change["actor_id"] == str(organization.admin.user_id)
    assert role_change["actor_name"] == "Amal Admin"
    assert role_change["object_id"] == str(agent.user_id)
    assert role_change["changes"] == {"role": ["agent", "manager"]}
    assert entries[1]["changes"] == {"default_language": ["ar", "en"], "time_zone": ["UTC", "Asia/Riyadh"]}
    assert rest.json()["next_cursor"] is None
    assert {e["object_type"] for e in only_users.json()["items"]} == {"user"}
    assert bad_cursor.status_code == 400


async def test_api_rate_limit_per_organization(tmp_path: Path) -> None:
    hub = await start_hub(make_settings(tmp_path, HUB_API_RATE_LIMIT="8"), kind="sqlite")
    try:
        busy, quiet = await register(hub), await register(hub)
        async with hub.client(busy.admin.token, language="en") as client:
            statuses = [(await client.get("/api/users/me")).status_code for _ in range(12)]
            limited = await client.get("/api/users/me")
        assert statuses[:8] == [200] * 8
        assert set(statuses[8:]) == {429}
        assert limited.json()["detail"] == "Too many requests. Try again later."
        assert 0 < int(limited.headers["Retry-After"]) <= 60
        async with hub.client(quiet.admin.token) as client:
            assert (
                await client.get("/api/users/me")
            ).status_code == 200  # another organization is unaffected
    finally:
        await hub.stop()


async def test_a_strangers_wrong_passwords_do_not_lock_the_owner_out(hub: RunningHub) -> None:
    organization = await register(hub)
    email = organization.admin.email
    stranger, owner = {"X-Forwarded-For": "203.0.113.5"}, {"X-Forwarded-For": "198.51.100.7"}
    async with hub.client(language="en") as client:
        for _ in range(hub.settings.login_failures_per_pair):
            wrong = await client.post(
                "/api/auth/login", json={"email": email, "password": "nope nope nope"}, headers=stranger
            )
            assert wrong.status_code == 401
        blocked = await client.post(
            "/api/auth/login", json={"email": email, "password": PASSWORD}, headers=stranger
        )
        assert blocked.status_code == 429
        assert blocked.json()["detail"] == "Too many failed sign-in attempts. Try again later."
        assert "Retry-After" in blocked.headers
        # The owner, from their own address, is not the stranger.
        assert (
            await client.post("/api/auth/login", json={"email": email, "password": PASSWORD}, headers=owner)
        ).status_code == 200


async def test_guesses_from_many_addresses_meet_the_slower_account_limit(tmp_path: Path) -> None:
    hub = await start_hub(
        make_settings(tmp_path, HUB_LOGIN_FAILURES_PER_ACCOUNT="8", HUB_LOGIN_FAILURES_PER_PAIR="3"),
        kind="sqlite",
    )
    try:
        organization = await register(hub)
        email = organization.admin.email
        async with hub.client() as client:
            for address in range(4):
                for _ in range(2):
                    wrong = await client.post(
                        "/api/auth/login",
                        json={"email": email, "password": "nope nope nope"},
                        headers={"X-Forwarded-For": f"203.0.113.{address}"},
                    )
                    assert wrong.status_code == 401
            locked = await client.post(
                "/api/auth/login",
                json={"email": email, "password": PASSWORD},
                headers={"X-Forwarded-For": "198.51.100.7"},
            )
            assert locked.status_code == 429
    finally:
        await hub.stop()


async def test_login_is_throttled_per_address(tmp_path: Path) -> None:
    hub = await start_hub(make_settings(tmp_path, HUB_LOGIN_FAILURES_PER_ADDRESS="4"), kind="sqlite")
    try:
        organization = await register(hub)
        async with hub.client() as client:
            for _ in range(4):
                wrong = await client.post(
                    "/api/auth/login", json={"email": unique_email(), "password": "guessing 1234"}
                )
                assert wrong.status_code == 401
            blocked = await client.post(
                "/api/auth/login", json={"email": organization.admin.email, "password": PASSWORD}
            )
        assert blocked.status_code == 429
    finally:
        await hub.stop()


async def test_cors_allows_only_configured_origins(tmp_path: Path) -> None:
    hub = await start_hub(make_settings(tmp_path, HUB_CORS_ORIGINS="https://app.example.test"), kind="sqlite")
    try:
        async with hub.client() as client:
            preflight = {
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            }
            allowed = await client.options(
                "/api/auth/login", headers={"Origin": "https://app.example.test", **preflight}
            )
            refused = await client.options(
                "/api/auth/login", headers={"Origin": "https://evil.example.test", **preflight}
            )
        assert allowed.headers.get("access-control-allow-origin") == "https://app.example.test"
        assert "access-control-allow-origin" not in refused.headers
    finally:
        await hub.stop()


def test_logs_mask_secrets() -> None:
    from hub.logs import _mask_secrets

    event = {
        "event": "login",
        "password": "hunter2",
        "access_token": "x",
        "email": "a@b.c",
        "Authorization": "Bearer y",
    }
    assert _mask_secrets(None, "info", event) == {
        "event": "login",
        "password": "***",
        "access_token": "***",
        "email": "a@b.c",
        "Authorization": "***",
    }
