"""The application factory: one ASGI app serving Litestar and Socket.IO, with its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import importlib.util
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec
import socketio
import structlog
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from taskiq import InMemoryBroker
from taskiq.api import run_scheduler_task

from hub import __version__, ai, console, controllers, errors, i18n, metrics, migrate, openapi
from hub.auth import TokenAuthenticationMiddleware
from hub.config import Settings, SettingsError
from hub.logs import RequestContextMiddleware
from hub.realtime import Pusher, build_socket_server
from hub.runtime import Runtime, activate, bind, deactivate, unbind
from hub.tasks import SCHEDULE_REFRESH, build_broker, build_scheduler
from hub.throttle import RateLimitMiddleware, is_channel_post

log = structlog.get_logger(__name__)

# Domain packages plug in by having these modules; the kernel imports nothing else of theirs.
DOMAIN_PACKAGES = ("hub.billing", "channels", "crm", "inbox", "tickets", "campaigns")


def domain_modules(role: str) -> list[Any]:
    found = []
    for package in DOMAIN_PACKAGES:
        name = f"{package}.{role}"
        if importlib.util.find_spec(package) is not None and importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name))
    return found


def load_handlers_and_tasks() -> None:
    """Import every module that registers events, event handlers or tasks, in web and worker alike
    (the socket events too, so the AsyncAPI document lists them all)."""
    importlib.import_module("hub.services")
    for role in ("models", "events", "handlers", "tasks", "realtime"):
        domain_modules(role)


def build_runtime(settings: Settings, *, socket_server: bool) -> tuple[Runtime, socketio.AsyncServer | None]:
    load_handlers_and_tasks()
    runtime = Runtime.build(settings)
    runtime.broker = build_broker(settings)
    runtime.broker.state.runtime = runtime  # tasks find their runtime through the broker that runs them
    server = build_socket_server(runtime) if socket_server else None
    runtime.pusher = Pusher(runtime, server)
    return runtime, server


class HostGuard:
    """Refuses any request (HTTP or Socket.IO) whose Host header is not one of the hub's own, so a
    forged Host can neither shape a link nor reach a hub on loopback through a rebound name.
    `/health` answers whatever the Host (load balancers ask by address); it makes no links."""

    def __init__(self, app: Any, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = {host.lower() for host in hosts}
        self.wildcards = tuple(host[1:] for host in self.hosts if host.startswith("*."))

    def allows(self, host_header: str) -> bool:
        try:
            host = urlsplit(f"//{host_header}").hostname or ""
        except ValueError:
            return False
        return host in self.hosts or (bool(host) and host.endswith(self.wildcards))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and self.hosts and scope.get("path") != "/health":
            host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), "")
            if not self.allows(host):
                await self._refuse(scope, send)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: dict[str, Any], send: Any) -> None:
        log.warning("request refused for its Host header", path=scope.get("path"))
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        language = scope_language(scope)
        message = i18n.N_("This address is not one the hub answers on.")
        body = msgspec.json.encode(
            errors.error_body(
                language,
                400,
                message,
                [{"field": "Host", "message": i18n.translate(language, message)}],
            )
        )
        await send_json(send, 400, body)


def scope_language(scope: dict[str, Any]) -> str:
    """The language of an answer made before the framework (and a signed-in user) is there."""
    accept = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"accept-language"), None)
    return i18n.choose_language(preferred=None, accept_language=accept, organization_default=None)


async def send_json(send: Any, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer with a JSON body straight through ASGI."""
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


class OverloadGuard:
    """Turns a channel post away at the door while the process is past what it can take (see
    `hub.throttle.Gate`), before the framework sees it: a refusal there costs tens of microseconds
    where one through the framework costs about a millisecond, so a flood several times what the
    process can take still leaves it the time for what it accepted."""

    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.gate = runtime.inbound_gate
        self.retry_after = self.gate.retry_after.encode()
        self._bodies: dict[str, bytes] = {}  # the refusal's JSON in each language, made once

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and is_channel_post(scope["path"]):
            reason = self.gate.overloaded()
            if reason is not None:
                await self._refuse(scope, send, reason)
                return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: dict[str, Any], send: Any, reason: str) -> None:
        self.gate.refused += 1
        metrics.inbound_refused(reason)
        metrics.INBOUND_POSTS.labels(
            "receipt" if scope["path"].endswith("/receipts") else "message", "refused"
        ).inc()
        language = scope_language(scope)
        body = self._bodies.get(language)
        if body is None:
            body = self._bodies[language] = msgspec.json.encode(
                errors.error_body(language, 503, errors.Busy.default_message)
            )
        await send_json(send, 503, body, [(b"retry-after", self.retry_after)])


def create_app(
    settings: Settings, *, prepare_database: bool = True, extra_routes: Sequence[Any] = ()
) -> HostGuard:
    """The hub's ASGI app; `prepare_database` migrates (embedded) or checks the schema at start."""
    i18n.load_catalogs()
    runtime, server = build_runtime(settings, socket_server=True)
    assert server is not None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        activate(runtime)
        bound = bind(runtime)  # the scheduler task started below inherits it
        scheduler_task: asyncio.Task[None] | None = None
        presence_task: asyncio.Task[None] | None = None
        metrics_task: asyncio.Task[None] | None = None
        try:
            if prepare_database and settings.should_migrate_on_start:
                await asyncio.to_thread(migrate.upgrade, settings)
            elif prepare_database:
                await migrate.ensure_current(settings)
            await migrate.ensure_safe_login(settings)
            assert runtime.broker is not None
            await runtime.broker.startup()
            if isinstance(runtime.broker, InMemoryBroker):
                # Embedded: no scheduler process, so timed work is fired from here.
                scheduler_task = asyncio.create_task(
                    run_scheduler_task(build_scheduler(runtime.broker), interval=SCHEDULE_REFRESH)
                )
            if runtime.redis is not None and runtime.pusher is not None:
                presence_task = asyncio.create_task(runtime.pusher.keep_presence())
            runtime.loop_lag.start()
            metrics_task = asyncio.create_task(metrics.keep_fresh(runtime))
            # What start-up made (modules, mappers, compiled routes) lives as long as the process:
            # kept out of the collector's full passes, which would otherwise walk it every time
            # and hold the event loop for a fifth of a second.
            gc.collect()
            gc.freeze()
            for module in domain_modules("lifespan"):
                await module.start(runtime)
            log.info(
                "hub started",
                embedded=settings.embedded,
                database=(settings.is_postgres and "postgresql") or "sqlite",
            )
            yield
        finally:
            await ai.stop_answers(runtime)
            for module in domain_modules("lifespan"):
                with contextlib.suppress(Exception):
                    await module.stop(runtime)
            await runtime.loop_lag.stop()
            for task in (scheduler_task, presence_task, metrics_task):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if runtime.broker is not None:
                await runtime.broker.shutdown()
            await runtime.close()
            unbind(bound)
            deactivate(runtime)
            metrics.process_ended()

    route_handlers: list[Any] = list(controllers.ROUTES)
    for module in domain_modules("controllers"):
        route_handlers.extend(getattr(module, "ROUTES", []))
    route_handlers.extend(console.ROUTES)
    route_handlers.extend(extra_routes)

    litestar_app = Litestar(
        route_handlers=route_handlers,
        dependencies=controllers.DEPENDENCIES,
        middleware=[
            RequestContextMiddleware(),
            DefineMiddleware(TokenAuthenticationMiddleware, exclude=["^/schema", "^/health"]),
            RateLimitMiddleware(),
        ],
        exception_handlers=errors.EXCEPTION_HANDLERS,
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None,
        openapi_config=OpenAPIConfig(
            title="Hub",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
            security=[{"BearerToken": []}],
            render_plugins=openapi.RENDER_PLUGINS,
        ),
        lifespan=[lifespan],
        state=State({"runtime": runtime}),
        logging_config=None,
    )
    if not settings.public_url:
        raise SettingsError("HUB_PUBLIC_URL is not set: the hub makes every link from it")
    app = HostGuard(
        OverloadGuard(socketio.ASGIApp(server, other_asgi_app=litestar_app), runtime), settings.hosts
    )
    app.runtime = runtime  # type: ignore[attr-defined]  # kept on the ASGI app for tests and the CLI
    app.socket_server = server  # type: ignore[attr-defined]  # kept on the ASGI app for tests and the CLI
    return app
