"""Billing subscriptions and the Stripe events applied.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

import hub.db
from hub.migrate import protect_tenant_table

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def _system_role() -> str:
    settings = context.config.attributes.get("settings")
    return settings.db_system_role if settings is not None else "hub_system"


def upgrade(app_role: str = "hub_app") -> None:
    op.create_table(
        "billing_subscriptions",
        sa.Column("stripe_customer_id", sa.String(length=100), nullable=False),
        sa.Column("stripe_subscription_id", sa.String(length=100), nullable=True),
        sa.Column("plan_code", sa.String(length=32), nullable=True),
        sa.Column("interval", sa.String(length=8), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("current_period_end", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("trial_end", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("billing_email", sa.String(length=254), nullable=True),
        sa.Column("card_brand", sa.String(length=20), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("card_expires", sa.String(length=7), nullable=True),
        sa.Column("pending_plan_code", sa.String(length=32), nullable=True),
        sa.Column("pending_interval", sa.String(length=8), nullable=True),
        sa.Column("past_due_since", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stripe_seen_at", hub.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_billing_subscriptions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_subscriptions")),
        sa.UniqueConstraint("organization_id", name=op.f("uq_billing_subscriptions_organization_id")),
        sa.UniqueConstraint(
            "stripe_subscription_id", name=op.f("uq_billing_subscriptions_stripe_subscription_id")
        ),
    )
    op.create_index(
        op.f("ix_billing_subscriptions_organization_id"),
        "billing_subscriptions",
        ["organization_id"],
        unique=False,
    )
    op.create_table(
        "billing_events",
        sa.Column("stripe_event_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_events")),
        sa.UniqueConstraint("stripe_event_id", name=op.f("uq_billing_events_stripe_event_id")),
    )
    system_role = _system_role()
    protect_tenant_table(op.get_bind(), "billing_subscriptions", role=app_role, system_role=system_role)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Stripe's events arrive for no organization: the system's bookkeeping alone.
        bind.exec_driver_sql("ALTER TABLE billing_events ENABLE ROW LEVEL SECURITY")
        bind.exec_driver_sql("ALTER TABLE billing_events FORCE ROW LEVEL SECURITY")
        bind.exec_driver_sql(
            f'CREATE POLICY system_access ON billing_events TO "{system_role}" USING (true) WITH CHECK (true)'
        )
        bind.exec_driver_sql(f'GRANT SELECT, INSERT, UPDATE ON billing_events TO "{system_role}"')


def downgrade(app_role: str = "hub_app") -> None:
    op.drop_table("billing_events")
    op.drop_index(op.f("ix_billing_subscriptions_organization_id"), table_name="billing_subscriptions")
    op.drop_table("billing_subscriptions")
