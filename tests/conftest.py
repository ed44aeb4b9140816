"""Shared fixtures: real hubs on real sockets, over SQLite and over PostgreSQL with Redis.

PostgreSQL and Redis come from TEST_DATABASE_URL / TEST_REDIS_URL (defaulting to the local
servers). Outside CI a missing server skips the tests that need it, with the reason; under
CI=true it fails them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import socketio
import uvicorn
from aiohttp import web
from aiosmtpd.controller import Controller
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task, run_scheduler_task

from hub import events
from hub.app import create_app
from hub.config import Settings
from hub.logs import configure_logging
from hub.runtime import Runtime, bind, unbind
from hub.tasks import SCHEDULE_REFRESH, build_scheduler
from tests.helpers.channels import Receiver, webhook_receiver
from tests.helpers.pushes import CapturedPushes
from tests.hub import recorders  # noqa: F401 - registers the test event, handler and task

IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "A long enough passphrase 42"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def need(service: str, url: str, port: int) -> None:
    if not _reachable(url, port):
        message = f"{service} is not answering at {url}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing service is a failure)")
        pytest.skip(message)


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(_asyncpg_dsn(url))
    return urlunsplit(parts._replace(path=f"/{name}"))


def run_outside_loop(coroutine_function: Any, *args: Any) -> Any:
    """Run a coroutine on its own loop in a thread: for sync fixtures called from async ones."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine_function(*args)).result()


async def _admin_execute(statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(TEST_DATABASE_URL))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database() -> str:
    name = f"hub_test_{secrets.token_hex(4)}"
    run_outside_loop(_admin_execute, f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    run_outside_loop(_admin_execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test run, dropped afterwards."""
    need("PostgreSQL", TEST_DATABASE_URL, 5432)
    name = create_database()
    yield _with_database(TEST_DATABASE_URL, name)
    drop_database(name)


@pytest.fixture
def fresh_database(postgres_database: str) -> Iterator[str]:
    """A PostgreSQL database of its own for one test (the owner's address): no other test's hub
    sweeps or takes up what it holds."""
    name = create_database()
    yield _with_database(TEST_DATABASE_URL, name)
    drop_database(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first (in their order), so the workers start them at once instead of one
    worker ending the run with a long test while the others wait."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _login and _reachable(TEST_DATABASE_URL, 5432):
        with contextlib.suppress(Exception):
            run_outside_loop(_admin_execute, f'DROP ROLE IF EXISTS "{_login.pop()}"')


@pytest.fixture(scope="session")
def redis_url() -> str:
    need("Redis", TEST_REDIS_URL, 6379)
    return TEST_REDIS_URL


_login: list[str] = []


def hub_login() -> str:
    """The PostgreSQL login the hubs under test run as, made once per test process: an ordinary
    login (no superuser, no BYPASSRLS, inheriting nothing), as production requires. `hub migrate`
    runs as the owner, the server's own superuser, and grants it the hub's roles."""
    if not _login:
        name = f"hub_login_{secrets.token_hex(4)}"
        run_outside_loop(_admin_execute, f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT')
        _login.append(name)
    return _login[0]


def as_hub_login(url: str) -> str:
    """The same database, reached as the hub's own login."""
    parts = urlsplit(_asyncpg_dsn(url))
    netloc = f"{hub_login()}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


# Loopback receivers stand in for the systems tenants point the hub at; the tests of the guard
# itself clear this (HUB_OUTBOUND_ALLOW="").
LOCAL_RECEIVERS = "127.0.0.0/8,::1/128"


# Hashing every test user's password at the production cost would take minutes of the suite;
# the cost is a setting, and tests/hub/test_auth.py checks the production default.
CHEAP_PASSWORDS = {"HUB_PASSWORD_TIME_COST": "1", "HUB_PASSWORD_MEMORY_KIB": "1024"}
# Four workers share two cores, so a hub under test often waits its turn for a tenth of a second;
# and a hub running inside the test process shares its event loop, which stands still while a
# plain (not async) test runs: the first tick after one reads as a loop as late as that test was
# long (a minute, for the type check); and it is often busy all the time. The refusal of channel posts while late or behind is tested
# on its own (tests/channels/test_admission.py).
PATIENT_LOOP = {
    "HUB_INBOUND_MAX_LAG_MS": "900000",
    "HUB_INBOUND_MAX_WAIT_MS": "900000",
    "HUB_INBOUND_MAX_BUSY_PERCENT": "100",
}
# Every hub under test serves /metrics to this token (tests/hub/test_metrics.py).
METRICS_TOKEN = secrets.token_urlsafe(24)


def make_settings(tmp: Path, **environ: str) -> Settings:
    """Settings for a hub under test; a PostgreSQL `DATABASE_URL` is the owner's, and the hub runs
    as its own login on that database."""
    base = {
        "HUB_DATA_DIR": str(tmp),
        "HUB_SECRET_KEY": secrets.token_urlsafe(40),
        "HUB_TASK_QUEUE": f"hubtest{secrets.token_hex(4)}",
        "HUB_LOG_JSON": "false",
        "HUB_SOCKET_PING_INTERVAL": "2",
        "HUB_OUTBOUND_ALLOW": LOCAL_RECEIVERS,
        "HUB_METRICS_TOKEN": METRICS_TOKEN,
        **CHEAP_PASSWORDS,
        **PATIENT_LOOP,
    }
    merged = {**base, **environ}
    database = merged.get("DATABASE_URL", "")
    if database.startswith("postgres") and "HUB_DATABASE_OWNER_URL" not in merged:
        merged["HUB_DATABASE_OWNER_URL"] = database
        merged["DATABASE_URL"] = as_hub_login(database)
    # The port this hub will listen on (start_hub takes another if it is taken by then).
    merged.setdefault("HUB_PUBLIC_URL", f"http://127.0.0.1:{free_port()}")
    return Settings.from_env(merged, read_dotenv=False)


@pytest.fixture(scope="session", autouse=True)
def _logging(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The hub's own log set-up, as `hub serve` has it; pytest's capture hooks into the same root."""
    configure_logging(make_settings(tmp_path_factory.mktemp("logs"), HUB_LOG_LEVEL="INFO"))


@dataclass
class RunningHub:
    """A hub served by uvicorn on a real port of this machine."""

    settings: Settings
    app: Any
    url: str
    kind: str
    server: uvicorn.Server
    serve_task: asyncio.Task[None]
    background: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def runtime(self) -> Runtime:
        return self.app.runtime  # type: ignore[no-any-return]

    def client(self, token: str | None = None, language: str | None = None) -> httpx.AsyncClient:
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if language:
            headers["Accept-Language"] = language
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def socket(self, token: str | None, **kwargs: Any) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(
            self.url,
            auth={"token": token} if token else None,
            transports=["websocket"],
            wait_timeout=10,
            **kwargs,
        )
        return client

    async def stop(self) -> None:
        for task in self.background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.server.should_exit = True
        await self.serve_task


def child_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `hub worker`, `hub scheduler` or script in a child process needs to
    join the hub these settings describe."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "DATABASE_", "REDIS_"))},
        "DATABASE_URL": settings.database_url,
        "HUB_SECRET_KEY": settings.secret_key,
        "HUB_TASK_QUEUE": settings.task_queue,
        "HUB_DATA_DIR": str(settings.data_dir),
        "HUB_PUBLIC_URL": settings.public_url or "",
        "HUB_OUTBOUND_ALLOW": LOCAL_RECEIVERS,
        "HUB_LOG_JSON": "false",
        **CHEAP_PASSWORDS,
        **PATIENT_LOOP,
    }
    if settings.redis_url:
        environment["REDIS_URL"] = settings.redis_url
    if settings.owner_database_url:
        environment["HUB_DATABASE_OWNER_URL"] = settings.owner_database_url
    return {**environment, **extra}


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _listening_port(settings: Settings) -> tuple[Settings, int]:
    """The port of the hub's public URL when it is a free local one; else a new port (and a local
    public URL changed to it; a test's own public address, such as https://hub.example.test, stays)."""
    parts = urlsplit(settings.public_url or "")
    if parts.hostname == "127.0.0.1" and parts.port and _port_is_free(parts.port):
        return settings, parts.port
    port = free_port()
    if parts.hostname not in (None, "127.0.0.1"):
        return settings, port
    return settings.with_changes(public_url=f"http://127.0.0.1:{port}"), port


async def start_hub(
    settings: Settings, *, kind: str, in_process_worker: bool = False, extra_routes: Sequence[Any] = ()
) -> RunningHub:
    """Serve a hub; with Redis, `in_process_worker` also consumes its task queue and fires its
    timed work here (what `hub worker` and `hub scheduler` do in their own processes)."""
    settings, port = _listening_port(settings)
    if not settings.allowed_hosts:
        settings = settings.with_changes(allowed_hosts=("127.0.0.1", "localhost"))
    app = create_app(settings, extra_routes=extra_routes)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    serve_task = asyncio.create_task(server.serve())
    while not server.started:
        if serve_task.done():
            serve_task.result()
            raise RuntimeError("hub did not start")
        await asyncio.sleep(0.02)
    hub = RunningHub(
        settings=settings,
        app=app,
        url=f"http://127.0.0.1:{port}",
        kind=kind,
        server=server,
        serve_task=serve_task,
    )
    if in_process_worker and settings.redis_url:
        broker = app.runtime.broker
        # Bound to this hub's runtime, as `hub worker` and `hub scheduler` are to theirs: several hubs
        # share this process, and an unbound scheduler would read the last-started hub's timed jobs.
        token = bind(app.runtime)
        try:
            hub.background.append(
                asyncio.create_task(run_receiver_task(broker, ack_time=AcknowledgeType.WHEN_EXECUTED))
            )
            hub.background.append(
                asyncio.create_task(run_scheduler_task(build_scheduler(broker), interval=SCHEDULE_REFRESH))
            )
        finally:
            unbind(token)
    return hub


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningHub]:
    """The hub, embedded (SQLite, no Redis) and scaled (PostgreSQL and Redis)."""
    tmp = tmp_path_factory.mktemp(f"hub-{request.param}")
    if request.param == "sqlite":
        settings = make_settings(tmp, HUB_EVENT_CLAIM_SECONDS="2")
        running = await start_hub(settings, kind="sqlite", extra_routes=probe_routes())
    else:
        database = request.getfixturevalue("postgres_database")
        redis = request.getfixturevalue("redis_url")
        settings = make_settings(
            tmp,
            DATABASE_URL=database,
            REDIS_URL=redis,
            HUB_EVENT_CLAIM_SECONDS="2",
            HUB_MIGRATE_ON_START="true",
        )
        running = await start_hub(
            settings, kind="postgres", in_process_worker=True, extra_routes=probe_routes()
        )
    yield running
    await running.stop()


def probe_routes() -> list[Any]:
    from tests.hub.probes import PROBES

    return PROBES


@dataclass
class Member:
    token: str
    user_id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: str


@dataclass
class Organization:
    id: uuid.UUID
    slug: str
    admin: Member
    members: dict[str, Member] = field(default_factory=dict)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(5)}@example.test"


async def register(
    hub: RunningHub, *, language: str | None = None, name: str = "Acme Trading"
) -> Organization:
    email = unique_email("admin")
    body = {"organization_name": name, "full_name": "Amal Admin", "email": email, "password": PASSWORD}
    if language:
        body["language"] = language
    async with hub.client() as client:
        response = await client.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    admin = Member(
        token=data["access_token"],
        user_id=uuid.UUID(data["user"]["id"]),
        organization_id=uuid.UUID(data["organization"]["id"]),
        email=email,
        role="admin",
    )
    return Organization(id=admin.organization_id, slug=data["organization"]["slug"], admin=admin)


async def add_member(
    hub: RunningHub, organization: Organization, role: str, *, as_the_role: bool = True
) -> Member:
    """Invite and accept, the way a person joins; `as_the_role` keeps them as the organization's
    member of that role (`organization.members[role]`), else they are one more of it."""
    email = unique_email(role)
    async with hub.client(organization.admin.token) as client:
        invited = await client.post("/api/users/invite", json={"email": email, "role": role})
    assert invited.status_code == 201, invited.text
    token = invited.json()["invitation_url"].split("token=", 1)[1]
    async with hub.client() as client:
        accepted = await client.post(
            "/api/auth/accept-invitation",
            json={"token": token, "full_name": f"{role.title()} Person", "password": PASSWORD},
        )
    assert accepted.status_code == 200, accepted.text
    data = accepted.json()
    member = Member(
        token=data["access_token"],
        user_id=uuid.UUID(data["user"]["id"]),
        organization_id=organization.id,
        email=email,
        role=role,
    )
    if as_the_role:
        organization.members[role] = member
    return member


@contextlib.asynccontextmanager
async def hub_of_kind(request: Any, tmp_path: Path, **environ: str) -> AsyncIterator[RunningHub]:
    """A hub of the kind `request.param` names: embedded (sqlite), or on PostgreSQL + Redis with
    its worker and scheduler in this process (postgres)."""
    if request.param == "postgres":
        environ |= {
            "DATABASE_URL": request.getfixturevalue("fresh_database"),
            "REDIS_URL": request.getfixturevalue("redis_url"),
            "HUB_MIGRATE_ON_START": "true",
        }
    hub = await start_hub(
        make_settings(tmp_path, **environ), kind=request.param, in_process_worker=request.param == "postgres"
    )
    try:
        yield hub
    finally:
        await hub.stop()


@pytest.fixture(params=["sqlite", "postgres"])
async def assisted(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[RunningHub, Any]]:
    """A hub of either kind using the local OpenAI-protocol server for AI, and that server."""
    from tests.helpers.openai_server import ai_settings, openai_server

    async with openai_server() as server, hub_of_kind(request, tmp_path, **ai_settings(server)) as hub:
        yield hub, server


async def with_every_role(hub: RunningHub, **registration: Any) -> Organization:
    """A fresh organization with one user of every role (`registration` as `register` takes it)."""
    org = await register(hub, **registration)
    org.members["admin"] = org.admin
    for role in ("manager", "agent", "member"):
        await add_member(hub, org, role)
    return org


@pytest.fixture
async def organization(hub: RunningHub) -> Organization:
    """A fresh organization with one user of every role."""
    return await with_every_role(hub)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A local webhook receiver that keeps what the hub posts (campaign tests count theirs)."""
    async with webhook_receiver() as box:
        yield box


@pytest.fixture
def captured_events() -> Iterator[list[events.Event]]:
    """The events committed while the test runs, in order."""
    with events.capture_events() as captured:
        yield captured


async def capture_pushes(hub: RunningHub, organization: Organization) -> CapturedPushes:
    """Sockets for each person of `organization` (every role and a second agent) and for an admin
    of another organization, recording what each receives (the socket events' contract tests)."""
    agent_b = await add_member(hub, organization, "agent", as_the_role=False)
    stranger = await register(hub, name="Other Trading")
    people = {role: organization.members[role] for role in ("admin", "manager", "member", "agent")}
    pushes = CapturedPushes(hub, {**people, "agent_b": agent_b, "stranger": stranger.admin})
    await pushes.connect()
    return pushes


@pytest.fixture
async def captured_pushes(hub: RunningHub, organization: Organization) -> AsyncIterator[CapturedPushes]:
    pushes = await capture_pushes(hub, organization)
    yield pushes
    await pushes.close()


async def eventually(check: Any, *, within: float = 10.0, interval: float = 0.05) -> Any:
    """Poll an async or plain callable until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


async def serve_web_app(
    app: web.Application, host: str = "127.0.0.1", *, cancel_on_disconnect: bool = False
) -> tuple[web.AppRunner, str]:
    """Serve a small aiohttp app (a receiving system, an internal service) on a free port of
    `host`; its runner (clean it up after) and its address. With `cancel_on_disconnect`, a
    handler stops when its client goes away (so it counts only requests still open)."""
    runner = web.AppRunner(app, handler_cancellation=cancel_on_disconnect)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://{host}:{port}"


def one_route_app(path: str, handler: Any, method: str = "POST") -> web.Application:
    app = web.Application()
    app.router.add_route(method, path, handler)
    return app


@pytest.fixture
async def public_receiver_url() -> AsyncIterator[str]:
    """A receiving system that takes every post and answers nothing in particular."""

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    runner, address = await serve_web_app(one_route_app("/hook", ok))
    yield f"{address}/hook"
    await runner.cleanup()


class Mailbox:
    """A local SMTP server's inbox: every message the hub sends, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append(BytesParser(policy=default_policy).parsebytes(envelope.original_content))  # type: ignore[arg-type]
        return "250 OK"


@contextlib.asynccontextmanager
async def hub_with_mailbox(tmp: Path, **environ: str) -> AsyncIterator[tuple[RunningHub, Mailbox]]:
    """An embedded hub that sends its e-mail to a local SMTP server, and that server's inbox."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = make_settings(
        tmp,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        SMTP_STARTTLS="false",
        SMTP_SENDER="hub@example.test",
        **environ,
    )
    running = await start_hub(settings, kind="sqlite")
    try:
        yield running, mailbox
    finally:
        await running.stop()
        controller.stop()
