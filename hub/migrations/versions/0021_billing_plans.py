"""Billing plans: what the installation sells, from its plans file.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

import hub.db

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def _system_role() -> str:
    settings = context.config.attributes.get("settings")
    return settings.db_system_role if settings is not None else "hub_system"


def upgrade(app_role: str = "hub_app") -> None:
    op.create_table(
        "billing_plans",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("monthly_amount", sa.BigInteger(), nullable=False),
        sa.Column("yearly_amount", sa.BigInteger(), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("modules", sa.JSON(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("stripe_product_id", sa.String(length=100), nullable=True),
        sa.Column("stripe_monthly_price_id", sa.String(length=100), nullable=True),
        sa.Column("stripe_yearly_price_id", sa.String(length=100), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_plans")),
        sa.UniqueConstraint("code", name=op.f("uq_billing_plans_code")),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # The installation's price list: every organization reads it, only the system writes it.
        system_role = _system_role()
        bind.exec_driver_sql("ALTER TABLE billing_plans ENABLE ROW LEVEL SECURITY")
        bind.exec_driver_sql("ALTER TABLE billing_plans FORCE ROW LEVEL SECURITY")
        bind.exec_driver_sql(
            f'CREATE POLICY system_access ON billing_plans TO "{system_role}" USING (true) WITH CHECK (true)'
        )
        bind.exec_driver_sql(
            f'CREATE POLICY tenant_read ON billing_plans FOR SELECT TO "{app_role}" USING (true)'
        )
        bind.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE ON billing_plans TO "{system_role}"')
        bind.exec_driver_sql(f'GRANT SELECT ON billing_plans TO "{app_role}"')


def downgrade(app_role: str = "hub_app") -> None:
    op.drop_table("billing_plans")
