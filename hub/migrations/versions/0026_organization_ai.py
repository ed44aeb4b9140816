"""An organization's own AI server: its address, its sealed key, its models.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

import hub.db
from hub.migrate import protect_tenant_table

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def _system_role() -> str:
    settings = context.config.attributes.get("settings")
    return settings.db_system_role if settings is not None else "hub_system"


def upgrade(app_role: str = "hub_app") -> None:
    op.create_table(
        "ai_settings",
        sa.Column("base_url", sa.String(length=500), nullable=False),
        sa.Column("api_key_sealed", sa.String(length=1000), nullable=True),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("embeddings_model", sa.String(length=100), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ai_settings_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_settings")),
        sa.UniqueConstraint("organization_id", name=op.f("uq_ai_settings_organization_id")),
    )
    op.create_index(op.f("ix_ai_settings_organization_id"), "ai_settings", ["organization_id"], unique=False)
    protect_tenant_table(op.get_bind(), "ai_settings", role=app_role, system_role=_system_role())


def downgrade(app_role: str = "hub_app") -> None:
    op.drop_index(op.f("ix_ai_settings_organization_id"), table_name="ai_settings")
    op.drop_table("ai_settings")
