"""The WhatsApp store's schema: on PostgreSQL the profiles' keys live in the hub's database, in a
schema of their own that only the hub's login may use (granted by `hub migrate`); neonize makes
its tables there itself.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 08:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade(app_role: str = "hub_app") -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS whatsapp")
        bind.exec_driver_sql("REVOKE ALL ON SCHEMA whatsapp FROM PUBLIC")


def downgrade(app_role: str = "hub_app") -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP SCHEMA IF EXISTS whatsapp CASCADE")
