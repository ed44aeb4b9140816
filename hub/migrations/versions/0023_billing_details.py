"""Billing details: the organization's tax id on its billing account, and the card expiry already
warned about.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade(app_role: str = "hub_app") -> None:
    with op.batch_alter_table("billing_subscriptions", schema=None) as table:
        table.add_column(sa.Column("tax_id_type", sa.String(length=16), nullable=True))
        table.add_column(sa.Column("tax_id_value", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("card_warned_for", sa.String(length=7), nullable=True))


def downgrade(app_role: str = "hub_app") -> None:
    with op.batch_alter_table("billing_subscriptions", schema=None) as table:
        table.drop_column("card_warned_for")
        table.drop_column("tax_id_value")
        table.drop_column("tax_id_type")
