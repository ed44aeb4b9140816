"""The `hub` command: serve, worker, scheduler, migrate, createadmin, billing."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import getpass
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from hub.config import LANGUAGES, Settings, SettingsError


def _fail(message: str) -> int:
    print(f"hub: {message}", file=sys.stderr)
    return 2


def _settings() -> Settings:
    settings = Settings.from_env()
    from hub.logs import configure_logging

    configure_logging(settings)
    return settings


def share_metrics(settings: Settings) -> None:
    """The processes of one machine count into one directory (see `hub.metrics`); set before
    anything imports prometheus-client, which picks its mode then. `hub serve` on embedded defaults
    is the only process, so what an earlier run left there is cleared."""
    if "prometheus_client" in sys.modules and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise RuntimeError("prometheus_client was imported before its directory was set")
    directory = Path(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.metrics_dir or settings.data_dir / "metrics"
    )
    directory.mkdir(parents=True, exist_ok=True)
    if settings.embedded:
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def prepare_database(settings: Settings) -> None:
    from hub import migrate

    if settings.should_migrate_on_start:
        migrate.upgrade(settings)
    else:
        asyncio.run(migrate.ensure_current(settings))


def listening_defaults(settings: Settings, host: str, port: int) -> Settings:
    """Embedded, with no public URL given: links point at the address the server listens on, and
    requests may name it (or localhost) as their host."""
    if settings.public_url:
        return settings
    everywhere = host in ("0.0.0.0", "::", "")  # noqa: S104 - reading the option, not binding
    shown = ("::1" if ":" in host else "127.0.0.1") if everywhere else host
    netloc = f"[{shown}]" if ":" in shown else shown
    hosts = settings.allowed_hosts or (shown, "localhost", "127.0.0.1", "::1")
    if everywhere:
        print(
            "hub: set HUB_PUBLIC_URL (and HUB_ALLOWED_HOSTS) to the address people use to reach this machine",
            flush=True,
        )
    return settings.with_changes(public_url=f"http://{netloc}:{port}", allowed_hosts=tuple(hosts))


def check_database_login(settings: Settings) -> None:
    """Refuse to run on PostgreSQL as a login that row security cannot hold."""
    from hub import migrate

    asyncio.run(migrate.ensure_safe_login(settings))


def serve(args: argparse.Namespace) -> int:
    settings = listening_defaults(_settings(), args.host, args.port)
    share_metrics(settings)  # before the app is imported: see share_metrics

    import uvicorn

    from hub.app import create_app

    check_database_login(settings)
    prepare_database(settings)
    app = create_app(settings, prepare_database=False)
    print(f"hub: serving on http://{args.host}:{args.port} (data in {settings.data_dir})", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        timeout_graceful_shutdown=10,
    )
    return 0


def _run_with_runtime(settings: Settings, body: Callable[[Any], Coroutine[Any, Any, None]]) -> int:
    from hub import metrics
    from hub.app import build_runtime
    from hub.runtime import activate, bind, deactivate

    async def main() -> None:
        runtime, _ = build_runtime(settings, socket_server=False)
        activate(runtime)
        bind(runtime)
        # As in `hub serve`: what start-up made stays out of the collector's full passes.
        gc.collect()
        gc.freeze()
        refreshing = asyncio.create_task(metrics.keep_fresh(runtime))
        try:
            await body(runtime)
        finally:
            refreshing.cancel()
            await runtime.close()
            deactivate(runtime)
            metrics.process_ended()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0


def worker(_args: argparse.Namespace) -> int:
    from taskiq.acks import AcknowledgeType
    from taskiq.api import run_receiver_task

    settings = _settings()
    if not settings.redis_url:
        return _fail("hub worker needs REDIS_URL; in embedded mode `hub serve` runs the tasks itself")
    share_metrics(settings)
    check_database_login(settings)
    asyncio.run(_check_current(settings))

    async def receive(runtime: Any) -> None:
        await runtime.broker.startup()
        try:
            # Acknowledged only after the task ran: a killed worker's message is delivered again.
            await run_receiver_task(
                runtime.broker, ack_time=AcknowledgeType.WHEN_EXECUTED, max_async_tasks=50
            )
        finally:
            await runtime.broker.shutdown()

    return _run_with_runtime(settings, receive)


def scheduler(_args: argparse.Namespace) -> int:
    from taskiq.api import run_scheduler_task

    from hub.tasks import SCHEDULE_REFRESH, build_scheduler

    settings = _settings()
    if not settings.redis_url:
        return _fail("hub scheduler needs REDIS_URL; in embedded mode `hub serve` fires timed work itself")
    share_metrics(settings)
    check_database_login(settings)
    asyncio.run(_check_current(settings))

    async def fire(runtime: Any) -> None:
        await runtime.broker.startup()
        try:
            await run_scheduler_task(build_scheduler(runtime.broker), interval=SCHEDULE_REFRESH)
        finally:
            await runtime.broker.shutdown()

    return _run_with_runtime(settings, fire)


async def _check_current(settings: Settings) -> None:
    from hub import migrate

    await migrate.ensure_current(settings)


def migrate_command(args: argparse.Namespace) -> int:
    from hub import migrate

    settings = _settings()
    migrate.upgrade(settings, args.revision)
    print(
        f"hub: database at revision {migrate.head_revision(settings) if args.revision == 'head' else args.revision}"
    )
    return 0


def createadmin(args: argparse.Namespace) -> int:
    from hub import i18n, migrate, services
    from hub.errors import HubError
    from hub.runtime import Runtime, activate, deactivate

    settings = _settings()
    password = os.environ.get("HUB_ADMIN_PASSWORD") or getpass.getpass("Password for the new admin: ")
    if settings.should_migrate_on_start:
        migrate.upgrade(settings)

    async def create() -> None:
        runtime = Runtime.build(settings)
        activate(runtime)
        try:
            signed_in = await services.create_organization(
                runtime,
                organization_name=args.organization,
                full_name=args.name,
                email=args.email,
                password=password,
                language=args.language,
            )
            print(
                f"hub: created organization {signed_in.organization.name!r} "
                f"(slug {signed_in.organization.slug}) with admin {signed_in.user.email}"
            )
        finally:
            await runtime.close()
            deactivate(runtime)

    try:
        asyncio.run(create())
    except HubError as error:
        return _fail(i18n.translate("en", error.message, **error.params))
    return 0


def sync_plans(args: argparse.Namespace) -> int:
    """Make Stripe's products and prices and the hub's plans match a plans file."""
    import stripe

    from hub import migrate
    from hub.billing import services
    from hub.runtime import Runtime, activate, deactivate

    settings = _settings()
    if not settings.stripe_secret_key:
        return _fail("billing is not configured: set STRIPE_SECRET_KEY")
    try:
        specs = services.read_plans(Path(args.file))
    except services.PlansFileError as error:
        return _fail(str(error))
    if settings.should_migrate_on_start:
        migrate.upgrade(settings)

    async def sync() -> None:
        runtime = Runtime.build(settings)
        activate(runtime)
        try:
            for plan in await services.sync_plans(runtime, specs):
                print(f"hub: plan {plan.code}: {plan.stripe_monthly_price_id}, {plan.stripe_yearly_price_id}")
        finally:
            await runtime.close()
            deactivate(runtime)

    try:
        asyncio.run(sync())
    except stripe.StripeError as error:
        return _fail(f"Stripe refused: {error.user_message or error}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="hub", description="Real-time omnichannel messaging hub")
    commands = root.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the web server (HTTP API and Socket.IO)")
    serve_parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve_parser.add_argument("--port", type=int, default=None, help="default: $PORT, else 8000")
    serve_parser.set_defaults(handler=serve)

    commands.add_parser("worker", help="run background tasks (needs REDIS_URL)").set_defaults(handler=worker)
    commands.add_parser("scheduler", help="fire timed work (needs REDIS_URL)").set_defaults(handler=scheduler)

    migrate_parser = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate_parser.add_argument("--revision", default="head")
    migrate_parser.set_defaults(handler=migrate_command)

    admin_parser = commands.add_parser("createadmin", help="create an organization and its first admin")
    admin_parser.add_argument("--organization", required=True)
    admin_parser.add_argument("--email", required=True)
    admin_parser.add_argument("--name", required=True)
    admin_parser.add_argument("--language", choices=LANGUAGES, default="ar")
    admin_parser.set_defaults(handler=createadmin)

    billing_parser = commands.add_parser("billing", help="billing through Stripe")
    billing_commands = billing_parser.add_subparsers(dest="billing_command", required=True)
    plans_parser = billing_commands.add_parser(
        "sync-plans", help="make Stripe's products and prices and the hub's plans match a plans file"
    )
    plans_parser.add_argument("file", help="a plans file (TOML; hub/billing/plans.toml is an example)")
    plans_parser.set_defaults(handler=sync_plans)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "port", "absent") is None:
        raw = os.environ.get("PORT", "8000")
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            return _fail(f"PORT must be a port number, got {raw!r}")
        args.port = int(raw)
    try:
        return int(args.handler(args))
    except SettingsError as error:
        return _fail(str(error))
    except (OSError, DBAPIError) as error:
        return _fail(f"cannot reach the database: {str(error).splitlines()[0]}")


if __name__ == "__main__":
    sys.exit(main())
