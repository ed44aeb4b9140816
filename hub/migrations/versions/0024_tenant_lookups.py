"""Indexes led by the organization for look-ups on every inbound message: an agent's open
conversations (assignment in turn) and a conversation's labels. With only the organization's own
index and a single-column one beside it, SQLite's planner took the organization's and read every
conversation of it per message.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 19:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade(app_role: str = "hub_app") -> None:
    op.create_index(
        "ix_conversations_org_assignee", "conversations", ["organization_id", "assignee_id", "status"]
    )
    op.create_index(
        "ix_conversation_labels_org_conversation",
        "conversation_labels",
        ["organization_id", "conversation_id"],
    )


def downgrade(app_role: str = "hub_app") -> None:
    op.drop_index("ix_conversation_labels_org_conversation", table_name="conversation_labels")
    op.drop_index("ix_conversations_org_assignee", table_name="conversations")
