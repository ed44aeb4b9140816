"""Alembic environment: runs the migrations over the hub's async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import hub.models  # noqa: F401 - registers the kernel's tables
from hub.app import domain_modules
from hub.config import Settings
from hub.db import Base

domain_modules("models")  # and the tables of every domain package

settings: Settings = context.config.attributes["settings"]


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations(app_role=settings.db_app_role)


async def run() -> None:
    if settings.database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(settings.migration_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_with)
    finally:
        await engine.dispose()


asyncio.run(run())
