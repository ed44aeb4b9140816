"""Schema migrations (Alembic) on SQLite and PostgreSQL, and the row-level security they set up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from hub.config import Settings, SettingsError
from hub.db import create_engine

SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database to `revision`; blocking, so call it outside the event loop."""
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revision(settings: Settings) -> str | None:
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


async def ensure_current(settings: Settings) -> None:
    """Scaled mode migrates with `hub migrate`; a web process refuses to run on an older schema."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
    if current != head_revision(settings):
        raise SettingsError("the database schema is not current: run `hub migrate` first")


def protect_tenant_table(
    connection: Connection, table: str, *, role: str, column: str = "organization_id"
) -> None:
    """Row-level security for one tenant table: a transaction sees only its organization's rows."""
    if connection.dialect.name != "postgresql":
        return
    tenant = "NULLIF(current_setting('app.organization_id', true), '')::uuid"
    connection.exec_driver_sql(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    connection.exec_driver_sql(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
    connection.exec_driver_sql(
        f'CREATE POLICY tenant_isolation ON "{table}" USING ("{column}" = {tenant}) WITH CHECK ("{column}" = {tenant})'
    )
    connection.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO "{role}"')


def create_app_role(connection: Connection, *, role: str) -> None:
    """The role tenant transactions switch to: it can log in nowhere and bypasses no policy."""
    if connection.dialect.name != "postgresql":
        return
    connection.exec_driver_sql(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" NOLOGIN NOBYPASSRLS NOSUPERUSER;
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
