"""Row security forced on every tenant table, and a system role for cross-organization work.

Until now the cross-organization paths ran as the owner of the tables, which row security does
not hold. From here the hub's login can do nothing by itself: tenant transactions switch to the
tenant role, cross-organization ones to the system role, and the owner too is held by the
policies (FORCE).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 21:10:00
"""

from __future__ import annotations

from alembic import context, op

from hub.migrate import create_app_role, protect_tenant_table

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _system_role() -> str:
    settings = context.config.attributes.get("settings")
    return settings.db_system_role if settings is not None else "hub_system"


def _tenant_tables() -> list[str]:
    rows = op.get_bind().exec_driver_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relrowsecurity ORDER BY c.relname"
    )
    return [row[0] for row in rows]


def upgrade(app_role: str = "hub_app") -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    system_role = _system_role()
    create_app_role(bind, role=system_role)
    for table in _tenant_tables():
        column = "id" if table == "organizations" else "organization_id"
        protect_tenant_table(bind, table, role=app_role, column=column, system_role=system_role)
    for role in (app_role, system_role):
        bind.exec_driver_sql(f'GRANT SELECT ON alembic_version TO "{role}"')


def downgrade(app_role: str = "hub_app") -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    system_role = _system_role()
    for table in _tenant_tables():
        bind.exec_driver_sql(f'DROP POLICY IF EXISTS system_access ON "{table}"')
        bind.exec_driver_sql(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
        bind.exec_driver_sql(f'REVOKE ALL ON "{table}" FROM "{system_role}"')
    bind.exec_driver_sql(f'REVOKE SELECT ON alembic_version FROM "{system_role}"')  # noqa: S608 - a role name
