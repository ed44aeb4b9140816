"""The assistant that answers customers: its settings, its part in each conversation, and the
mark on the messages it wrote.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 20:30:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

import hub.db
from hub.migrate import protect_tenant_table

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def _system_role() -> str:
    settings = context.config.attributes.get("settings")
    return settings.db_system_role if settings is not None else "hub_system"


def _tenant_columns(table: str) -> list[Any]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f(f"fk_{table}_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade(app_role: str = "hub_app") -> None:
    with op.batch_alter_table("messages", schema=None) as batch:
        batch.add_column(sa.Column("by_assistant", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "assistant_settings",
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("hours", sa.JSON(), nullable=False),
        sa.Column("handoff_after_turns", sa.Integer(), nullable=False),
        sa.Column("handoff_to", sa.String(length=16), nullable=False),
        *_tenant_columns("assistant_settings"),
        sa.UniqueConstraint("organization_id", name=op.f("uq_assistant_settings_organization_id")),
    )
    op.create_table(
        "assistant_threads",
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        *_tenant_columns("assistant_threads"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_assistant_threads_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "organization_id",
            "conversation_id",
            name=op.f("uq_assistant_threads_organization_id_conversation_id"),
        ),
    )
    op.create_index(
        "ix_assistant_threads_org_created", "assistant_threads", ["organization_id", "created_at"]
    )
    for table in ("assistant_settings", "assistant_threads"):
        op.create_index(op.f(f"ix_{table}_organization_id"), table, ["organization_id"], unique=False)
        protect_tenant_table(op.get_bind(), table, role=app_role, system_role=_system_role())


def downgrade(app_role: str = "hub_app") -> None:
    op.drop_table("assistant_threads")
    op.drop_table("assistant_settings")
    with op.batch_alter_table("messages", schema=None) as batch:
        batch.drop_column("by_assistant")
