"""Watermarks: how far each installation-wide sweep has come.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

import hub.db

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def _system_role() -> str:
    settings = context.config.attributes.get("settings")
    return settings.db_system_role if settings is not None else "hub_system"


def upgrade(app_role: str = "hub_app") -> None:
    op.create_table(
        "watermarks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_watermarks")),
        sa.UniqueConstraint("name", name=op.f("uq_watermarks_name")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # The installation's own bookkeeping: the system role's alone, no tenant's (row security
        # forced like everywhere else, with a policy for the system role only).
        system_role = _system_role()
        bind.exec_driver_sql("ALTER TABLE watermarks ENABLE ROW LEVEL SECURITY")
        bind.exec_driver_sql("ALTER TABLE watermarks FORCE ROW LEVEL SECURITY")
        bind.exec_driver_sql(
            f'CREATE POLICY system_access ON watermarks TO "{system_role}" USING (true) WITH CHECK (true)'
        )
        bind.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE ON watermarks TO "{system_role}"')


def downgrade(app_role: str = "hub_app") -> None:
    op.drop_table("watermarks")
