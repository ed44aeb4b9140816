"""Schema migrations (Alembic) on SQLite and PostgreSQL, and the row-level security they set up.

On PostgreSQL three kinds of role take part. The owner (the login `hub migrate` runs as,
`HUB_DATABASE_OWNER_URL` or else `DATABASE_URL`) owns the tables. Two roles that cannot log in
hold the access: `hub_app`, which tenant transactions switch to and which sees one organization,
and `hub_system`, which the few cross-organization paths switch to. The hub's own login is a
member of both but inherits neither, so on its own it can read nothing: a statement that
leaves its role behind (`RESET ROLE`) gains nothing. Every tenant table forces row security,
so not even its owner reads it past the policies.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from hub.config import Settings, SettingsError
from hub.db import create_engine

SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["settings"] = settings
    return config


log = structlog.get_logger(__name__)
ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database to `revision`; blocking, so call it outside the event loop. On
    PostgreSQL, also let the hub's login use the two roles (if it is not the owner itself)."""
    command.upgrade(alembic_config(settings), revision)
    if settings.is_postgres:
        asyncio.run(grant_login(settings))


async def grant_login(settings: Settings) -> None:
    """Make the hub's login a member of the tenant and system roles, without inheriting them."""
    login = make_url(settings.database_url).username
    engine = create_engine(settings.with_changes(database_url=settings.migration_url))
    try:
        async with engine.begin() as connection:
            if login is None:
                return
            exists = await connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": login})
            if not exists or not ROLE.match(login):
                return
            for role in (settings.db_app_role, settings.db_system_role):
                member = await connection.scalar(
                    text("SELECT pg_has_role(:login, :role, 'MEMBER')"), {"login": login, "role": role}
                )
                if not member:
                    await connection.execute(text(f'GRANT "{role}" TO "{login}"'))
            # The WhatsApp keys (channels.whatsapp.keys): the login's own, through no role.
            if await connection.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = 'whatsapp'")):
                await connection.execute(text(f'GRANT USAGE, CREATE ON SCHEMA whatsapp TO "{login}"'))
            inherits = await connection.scalar(
                text("SELECT rolinherit FROM pg_roles WHERE rolname = :r"), {"r": login}
            )
            if inherits:
                try:
                    async with connection.begin_nested():
                        await connection.execute(text(f'ALTER ROLE "{login}" NOINHERIT'))
                except DBAPIError:
                    log.warning("the hub's login still inherits its roles; make it NOINHERIT", login=login)
    finally:
        await engine.dispose()


class UnsafeLogin(SettingsError):
    """The database login could read past row security."""


async def ensure_safe_login(settings: Settings) -> None:
    """Refuse to run on PostgreSQL as a login that row security cannot hold: a superuser, one
    with BYPASSRLS, or one that inherits the system role (and so sees every organization
    without asking). `HUB_ALLOW_SUPERUSER=1` allows it on purpose, for development."""
    if not settings.is_postgres:
        return
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT r.rolname, r.rolsuper, r.rolbypassrls,"
                        " CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :system)"
                        " THEN pg_has_role(current_user, :system, 'USAGE') ELSE false END AS sees_all"
                        " FROM pg_roles r WHERE r.rolname = current_user"
                    ),
                    {"system": settings.db_system_role},
                )
            ).one()
    finally:
        await engine.dispose()
    if settings.allow_superuser:
        if row.rolsuper or row.rolbypassrls or row.sees_all:
            log.warning("running as a database login that row security does not hold", login=row.rolname)
        return
    if row.rolsuper or row.rolbypassrls:
        raise UnsafeLogin(
            f"the database login {row.rolname!r} is a superuser or bypasses row security; run the hub "
            "as an ordinary login (see README, Security) or set HUB_ALLOW_SUPERUSER=1 for development"
        )
    if row.sees_all:
        raise UnsafeLogin(
            f"the database login {row.rolname!r} inherits {settings.db_system_role!r}, so it sees every "
            f'organization on its own; run `ALTER ROLE "{row.rolname}" NOINHERIT` (hub migrate does it '
            "when it may)"
        )


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revision(settings: Settings) -> str | None:
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


async def ensure_current(settings: Settings) -> None:
    """Scaled mode migrates with `hub migrate`; a web process refuses to run on an older schema
    (or on one whose roles it cannot use yet)."""
    stale = SettingsError("the database schema is not current: run `hub migrate` first")
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            try:
                if settings.is_postgres:
                    await connection.execute(
                        text("SELECT set_config('role', :role, true)"), {"role": settings.db_system_role}
                    )
                current = await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
            except DBAPIError:
                raise stale from None
    finally:
        await engine.dispose()
    if current != head_revision(settings):
        raise stale


def protect_tenant_table(
    connection: Connection,
    table: str,
    *,
    role: str,
    column: str = "organization_id",
    system_role: str | None = None,
) -> None:
    """Row-level security for one tenant table: a transaction sees only its organization's rows.
    With `system_role` (every migration since 0016), also forced on the owner, and open to the
    system role's cross-organization work."""
    if connection.dialect.name != "postgresql":
        return
    if system_role is not None:
        connection.exec_driver_sql(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
        connection.exec_driver_sql(f'DROP POLICY IF EXISTS system_access ON "{table}"')
        connection.exec_driver_sql(
            f'CREATE POLICY system_access ON "{table}" TO "{system_role}" USING (true) WITH CHECK (true)'
        )
        connection.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{system_role}"')
    tenant = "NULLIF(current_setting('app.organization_id', true), '')::uuid"
    connection.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    connection.exec_driver_sql(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
    connection.exec_driver_sql(
        f'CREATE POLICY tenant_isolation ON "{table}" USING ("{column}" = {tenant}) WITH CHECK ("{column}" = {tenant})'
    )
    connection.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{role}"')


def create_app_role(connection: Connection, *, role: str) -> None:
    """A role transactions switch to: it can log in nowhere and bypasses no policy."""
    if connection.dialect.name != "postgresql":
        return
    connection.exec_driver_sql(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                BEGIN
                    CREATE ROLE "{role}" NOLOGIN NOBYPASSRLS NOSUPERUSER;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;  -- made meanwhile by another database's migration on this server
                END;
            END IF;
            BEGIN
                EXECUTE format('GRANT %I TO %I', '{role}', current_user);
            EXCEPTION WHEN insufficient_privilege OR invalid_grant_operation THEN
                RAISE NOTICE 'could not grant {role} to %', current_user;
            END;
        END
        $$;
        """
    )
    connection.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{_schema(connection)}" TO "{role}"')


def _schema(connection: Connection) -> str:
    return str(connection.exec_driver_sql("SELECT current_schema()").scalar())
