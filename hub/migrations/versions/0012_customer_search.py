"""Customer search on PostgreSQL: trigram indexes, so a search for part of a name, number,
e-mail or attribute value reads the index instead of every customer, and near spellings match.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 04:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The same expressions as the search in crm/services/customers.py, or PostgreSQL will not use them. Each
# is an expression, never a bare column: a trigram index on the bare phone column also answers
# `phone = ...`, and the planner then took it over the unique index for look-ups by number,
# which made a 100,000-row import 20 times slower.
INDEXES = {
    "ix_customers_name_trgm": "lower(name)",
    "ix_customers_phone_trgm": "lower(phone)",
    "ix_customers_email_trgm": "lower(email)",
    "ix_customers_attributes_trgm": "lower(CAST(attributes AS VARCHAR))",
}


def upgrade(app_role: str = "hub_app") -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite searches with plain LIKE
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # trusted: the database's owner may create it
    for name, expression in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON customers USING gin (({expression}) gin_trgm_ops)")


def downgrade(app_role: str = "hub_app") -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
