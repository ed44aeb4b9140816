"""Settings from the environment (and a `.env` file when present).

Embedded mode is what a bare `hub serve` gets: a SQLite file under the data directory, no Redis,
a secret key generated once and kept beside the database. Scaled mode is any PostgreSQL or Redis
configuration; there every secret must be given explicitly.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from dotenv import load_dotenv

from hub.outbound import OutboundPolicy


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


# Argon2id's cost for new password hashes (a hash keeps the cost it was made with).
PASSWORD_TIME_COST = 3
PASSWORD_MEMORY_KIB = 65536
LANGUAGES = ("ar", "en")
DEFAULT_LANGUAGE = "ar"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    secret_key: str
    redis_url: str | None = None
    # Where people reach the hub: every link it makes (e-mails, channel addresses, media) starts
    # here, never with a request's Host header. Required when scaled; `hub serve` defaults it to
    # the address it listens on.
    public_url: str | None = None
    # Host headers a request may carry; empty: the public URL's host only.
    allowed_hosts: tuple[str, ...] = ()
    # Private networks and host names the hub may call on a tenant's word (webhooks, downloads).
    outbound_policy: OutboundPolicy = field(default_factory=OutboundPolicy)
    # Run on PostgreSQL as a superuser or a login that bypasses row security (development only).
    allow_superuser: bool = False
    access_token_minutes: int = 60 * 12
    invitation_days: int = 7
    password_reset_minutes: int = 60
    password_time_cost: int = PASSWORD_TIME_COST
    password_memory_kib: int = PASSWORD_MEMORY_KIB
    cors_origins: tuple[str, ...] = ()
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_sender: str = "hub@localhost"
    smtp_starttls: bool = True
    # Requests per minute one organization (or one anonymous address) may make.
    api_rate_limit: int = 1200
    inbound_max_pending: int = 64
    inbound_max_lag: float = 0.1
    inbound_max_busy: float = 0.95
    inbound_max_wait: float = 0.05
    # How long a channel's post may take to send its body, and how many unsigned or unknown posts
    # one address may make a minute before it is refused.
    inbound_body_seconds: int = 30
    # Replies in flight to the outside at once: per channel, and per process in all.
    outbound_per_channel: int = 4
    outbound_max: int = 64
    # The longest one send to a channel may take in all (a reply, a campaign message): one not over
    # by then is given up, and settled from the channel's record only after it.
    send_seconds: float = 60.0
    inbound_failures_per_address: int = 60
    # Failed logins allowed in the window: per account from one address, per account from
    # anywhere (looser, so strangers cannot lock the owner out), and per address.
    login_failures_per_pair: int = 5
    login_failures_per_account: int = 50
    login_failures_per_address: int = 20
    login_failure_window_seconds: int = 900
    # Socket.IO heartbeat; lower it when a proxy closes idle connections sooner.
    socket_ping_interval: int = 25
    # Packets one socket may have waiting before it counts as a client that stopped reading (closed),
    # and pushes this process may have waiting for their emit (past it, channel posts are refused).
    socket_max_queued: int = 1000
    socket_fanout_queue: int = 5000
    # `/metrics` answers only with this bearer token (unset: it is off). The processes of one
    # machine keep their counts in one directory (default: metrics/ in the data directory).
    metrics_token: str | None = field(default=None, repr=False)
    metrics_dir: Path | None = None
    # WhatsApp reconnects: first delay and ceiling of the exponential backoff, in seconds.
    whatsapp_reconnect_base: float = 2.0
    whatsapp_reconnect_max: float = 300.0
    # How long a process's hold on a WhatsApp number lasts unless renewed (a third of it apart).
    whatsapp_lease_seconds: float = 15.0
    # On PostgreSQL, where the WhatsApp keys live (unset: the hub's database, schema whatsapp).
    whatsapp_store_url: str | None = field(default=None, repr=False)
    # Billing through Stripe: off without a secret key (self-hosting has no limits); the API base
    # is Stripe's unless a test or a proxy says otherwise.
    stripe_secret_key: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None
    # For the console's card form: the publishable key and where Stripe.js is loaded from (the
    # billing page's Content Security Policy allows exactly that script's origin).
    stripe_publishable_key: str | None = None
    stripe_js_url: str = "https://js.stripe.com/v3/"
    # AI assistance through any OpenAI-compatible server: off without a base URL or a model.
    ai_base_url: str | None = None
    ai_api_key: str | None = field(default=None, repr=False)
    ai_model: str | None = None
    ai_embeddings_model: str | None = None
    # Seconds one AI request may take before the agent is told the service is not answering.
    ai_timeout_seconds: float = 30.0
    # AI requests one organization may make a minute (so one tenant cannot starve the others).
    ai_requests_per_minute: int = 60
    # Days an organization whose payment failed keeps its plan before it is restricted.
    billing_grace_days: int = 7
    # Seconds an outbox event stays with the process that published it before the sweep retries it.
    event_claim_seconds: int = 120
    # Seconds after which a task a dead worker was running is taken by another worker.
    task_reclaim_seconds: float = 15.0
    # Seconds a timed job's claim holds before a failed hand-off is tried again.
    timed_job_claim_seconds: int = 10
    db_app_role: str = "hub_app"
    db_system_role: str = "hub_system"
    # The login `hub migrate` runs as (owner of the tables); unset: the same as DATABASE_URL.
    owner_database_url: str | None = field(default=None, repr=False)
    task_queue: str = "hub"
    log_json: bool | None = None
    log_level: str = "INFO"
    migrate_on_start: bool | None = None

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def migration_url(self) -> str:
        """Where `hub migrate` connects: the owner's login when one is given."""
        return self.owner_database_url or self.database_url

    @property
    def embedded(self) -> bool:
        return not self.is_postgres and self.redis_url is None

    @property
    def hosts(self) -> list[str]:
        """The Host headers requests may carry: the configured ones, else the public URL's."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        host = urlsplit(self.public_url).hostname if self.public_url else None
        return [host] if host else []

    @property
    def should_migrate_on_start(self) -> bool:
        return self.migrate_on_start if self.migrate_on_start is not None else not self.is_postgres

    def with_changes(self, **changes: object) -> Self:
        return replace(self, **changes)  # type: ignore[arg-type]  # dataclasses.replace takes the fields by name

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, read_dotenv: bool = True) -> Settings:
        if environ is None:
            if read_dotenv:
                load_dotenv(Path.cwd() / ".env", override=False)
            environ = dict(os.environ)
        env = _Reader(environ)
        data_dir = Path(env.text("HUB_DATA_DIR", "./var")).resolve()
        database_url = env.text("DATABASE_URL", "") or f"sqlite+aiosqlite:///{data_dir / 'hub.sqlite3'}"
        database_url = _async_driver(database_url)
        if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError("DATABASE_URL must be a sqlite:// or postgresql:// URL")
        owner_database_url = _async_driver(env.text("HUB_DATABASE_OWNER_URL", "")) or None
        if owner_database_url and not owner_database_url.startswith("postgresql+asyncpg://"):
            raise SettingsError("HUB_DATABASE_OWNER_URL must be a postgresql:// URL")
        if owner_database_url and not database_url.startswith("postgresql"):
            raise SettingsError("HUB_DATABASE_OWNER_URL needs DATABASE_URL on PostgreSQL too")
        redis_url = env.text("REDIS_URL", "") or None
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("REDIS_URL must be a redis:// or rediss:// URL")
        scaled = database_url.startswith("postgresql") or redis_url is not None
        secret_key = env.text("HUB_SECRET_KEY", "")
        if not secret_key:
            if scaled:
                raise SettingsError("HUB_SECRET_KEY is required when DATABASE_URL or REDIS_URL is set")
            secret_key = _kept_secret(data_dir)
        if len(secret_key) < 32:
            raise SettingsError("HUB_SECRET_KEY must be at least 32 characters long")
        public_url = env.text("HUB_PUBLIC_URL", "").rstrip("/") or None
        if public_url is not None and (
            not public_url.startswith(("http://", "https://")) or not urlsplit(public_url).hostname
        ):
            raise SettingsError("HUB_PUBLIC_URL must be an http:// or https:// address")
        if public_url is None and scaled:
            raise SettingsError("HUB_PUBLIC_URL is required when DATABASE_URL or REDIS_URL is set")
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            secret_key=secret_key,
            redis_url=redis_url,
            public_url=public_url,
            allowed_hosts=tuple(
                h.strip().lower() for h in env.text("HUB_ALLOWED_HOSTS", "").split(",") if h.strip()
            ),
            outbound_policy=OutboundPolicy.parse(env.text("HUB_OUTBOUND_ALLOW", "")),
            allow_superuser=bool(env.flag("HUB_ALLOW_SUPERUSER", default=False)),
            access_token_minutes=env.number("HUB_ACCESS_TOKEN_MINUTES", 60 * 12),
            invitation_days=env.number("HUB_INVITATION_DAYS", 7),
            password_reset_minutes=env.number("HUB_PASSWORD_RESET_MINUTES", 60),
            password_time_cost=env.number("HUB_PASSWORD_TIME_COST", PASSWORD_TIME_COST),
            password_memory_kib=env.number("HUB_PASSWORD_MEMORY_KIB", PASSWORD_MEMORY_KIB, least=1024),
            cors_origins=tuple(o.strip() for o in env.text("HUB_CORS_ORIGINS", "").split(",") if o.strip()),
            smtp_host=env.text("SMTP_HOST", "") or None,
            smtp_port=env.number("SMTP_PORT", 587),
            smtp_user=env.text("SMTP_USER", "") or None,
            smtp_password=env.text("SMTP_PASSWORD", "") or None,
            smtp_sender=env.text("SMTP_SENDER", "hub@localhost"),
            smtp_starttls=bool(env.flag("SMTP_STARTTLS", default=True)),
            api_rate_limit=env.number("HUB_API_RATE_LIMIT", 1200),
            inbound_max_pending=env.number("HUB_INBOUND_MAX_PENDING", 64),
            inbound_max_lag=env.number("HUB_INBOUND_MAX_LAG_MS", 100) / 1000,
            inbound_max_busy=env.number("HUB_INBOUND_MAX_BUSY_PERCENT", 95) / 100,
            inbound_max_wait=env.number("HUB_INBOUND_MAX_WAIT_MS", 50) / 1000,
            inbound_body_seconds=env.number("HUB_INBOUND_BODY_SECONDS", 30),
            outbound_per_channel=env.number("HUB_OUTBOUND_PER_CHANNEL", 4),
            outbound_max=env.number("HUB_OUTBOUND_MAX", 64),
            send_seconds=env.seconds("HUB_SEND_SECONDS", 60.0),
            inbound_failures_per_address=env.number("HUB_INBOUND_FAILURES_PER_ADDRESS", 60),
            login_failures_per_pair=env.number("HUB_LOGIN_FAILURES_PER_PAIR", 5),
            login_failures_per_account=env.number("HUB_LOGIN_FAILURES_PER_ACCOUNT", 50),
            login_failures_per_address=env.number("HUB_LOGIN_FAILURES_PER_ADDRESS", 20),
            login_failure_window_seconds=env.number("HUB_LOGIN_FAILURE_WINDOW_SECONDS", 900),
            socket_ping_interval=env.number("HUB_SOCKET_PING_INTERVAL", 25),
            socket_max_queued=env.number("HUB_SOCKET_MAX_QUEUED", 1000),
            socket_fanout_queue=env.number("HUB_SOCKET_FANOUT_QUEUE", 5000),
            metrics_token=env.text("HUB_METRICS_TOKEN", "") or None,
            metrics_dir=Path(env.text("HUB_METRICS_DIR", "")).resolve()
            if env.text("HUB_METRICS_DIR", "")
            else None,
            whatsapp_reconnect_base=env.seconds("HUB_WHATSAPP_RECONNECT_BASE_SECONDS", 2.0),
            whatsapp_reconnect_max=env.seconds("HUB_WHATSAPP_RECONNECT_MAX_SECONDS", 300.0),
            whatsapp_lease_seconds=env.seconds("HUB_WHATSAPP_LEASE_SECONDS", 15.0),
            whatsapp_store_url=env.text("HUB_WHATSAPP_STORE_URL", "") or None,
            stripe_secret_key=env.text("STRIPE_SECRET_KEY", "") or None,
            stripe_webhook_secret=env.text("STRIPE_WEBHOOK_SECRET", "") or None,
            stripe_api_base=env.text("STRIPE_API_BASE", "") or None,
            stripe_publishable_key=env.text("STRIPE_PUBLISHABLE_KEY", "") or None,
            stripe_js_url=_stripe_js_url(env.text("STRIPE_JS_URL", "") or "https://js.stripe.com/v3/"),
            billing_grace_days=env.number("HUB_BILLING_GRACE_DAYS", 7, least=0),
            ai_base_url=_optional_url("HUB_AI_BASE_URL", env.text("HUB_AI_BASE_URL", "")),
            ai_api_key=env.text("HUB_AI_API_KEY", "") or None,
            ai_model=env.text("HUB_AI_MODEL", "") or None,
            ai_embeddings_model=env.text("HUB_AI_EMBEDDINGS_MODEL", "") or None,
            ai_timeout_seconds=env.seconds("HUB_AI_TIMEOUT_SECONDS", 30.0),
            ai_requests_per_minute=env.number("HUB_AI_REQUESTS_PER_MINUTE", 60, least=1),
            event_claim_seconds=env.number("HUB_EVENT_CLAIM_SECONDS", 120),
            timed_job_claim_seconds=env.number("HUB_TIMED_JOB_CLAIM_SECONDS", 10),
            task_reclaim_seconds=env.seconds("HUB_TASK_RECLAIM_SECONDS", 15.0),
            db_app_role=env.text("HUB_DB_APP_ROLE", "hub_app"),
            db_system_role=env.text("HUB_DB_SYSTEM_ROLE", "hub_system"),
            owner_database_url=owner_database_url,
            task_queue=env.text("HUB_TASK_QUEUE", "hub"),
            log_json=env.flag("HUB_LOG_JSON", default=None),
            log_level=env.text("HUB_LOG_LEVEL", "INFO").upper(),
            migrate_on_start=env.flag("HUB_MIGRATE_ON_START", default=None),
        )


class _Reader:
    def __init__(self, environ: dict[str, str]) -> None:
        self.environ = environ

    def text(self, name: str, default: str) -> str:
        return self.environ.get(name, default).strip()

    def number(self, name: str, default: int, *, least: int = 1) -> int:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
        if value < least:
            raise SettingsError(f"{name} must be at least {least}, got {value}")
        return value

    def seconds(self, name: str, default: float) -> float:
        raw = self.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
        if value <= 0:
            raise SettingsError(f"{name} must be greater than zero, got {raw}")
        return value

    def flag(self, name: str, *, default: bool | None) -> bool | None:
        raw = self.environ.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _async_driver(url: str) -> str:
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def _stripe_js_url(url: str) -> str:
    _optional_url("STRIPE_JS_URL", url)
    return url  # as given: Stripe's address ends in a slash


def _optional_url(name: str, url: str) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(f"{name} must be an http(s) address, got {url!r}")
    return url.rstrip("/")


def _kept_secret(data_dir: Path) -> str:
    """The embedded secret key: made once, then read back so tokens survive restarts."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
