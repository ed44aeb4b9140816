"""Timed jobs are claimed for their run time before they are handed to the broker.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import hub.db

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade(app_role: str = "hub_app") -> None:
    with op.batch_alter_table("scheduled_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", hub.db.UTCDateTime(timezone=True), nullable=True))


def downgrade(app_role: str = "hub_app") -> None:
    with op.batch_alter_table("scheduled_jobs", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
