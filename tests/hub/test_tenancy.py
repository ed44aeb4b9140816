"""Tenant isolation: the API, the ORM scoping, and PostgreSQL row-level security underneath."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, ProgrammingError

from hub.db import TenancyError
from hub.models import AuditEntry, Organization, User
from tests.conftest import RunningHub, add_member, register


async def test_another_organizations_objects_are_404(hub: RunningHub) -> None:
    ours, theirs = await register(hub), await register(hub)
    their_agent = await add_member(hub, theirs, "agent")
    async with hub.client(ours.admin.token) as client:
        listed = (await client.get("/api/users")).json()["items"]
        assert [u["id"] for u in listed] == [str(ours.admin.user_id)]
        role = await client.patch(f"/api/users/{their_agent.user_id}/role", json={"role": "manager"})
        assert role.status_code == 404
        removed = await client.delete(f"/api/users/{their_agent.user_id}")
        assert removed.status_code == 404
        audit = (await client.get("/api/audit")).json()["items"]
        assert all(entry["object_id"] != str(theirs.id) for entry in audit)
        organization = (await client.get("/api/settings/organization")).json()
        assert organization["id"] == str(ours.id)
    async with hub.client(theirs.admin.token) as client:
        agent = [
            u for u in (await client.get("/api/users")).json()["items"] if u["id"] == str(their_agent.user_id)
        ]
        assert agent[0]["role"] == "agent"  # untouched


async def test_orm_queries_are_scoped_without_the_caller_asking(hub: RunningHub) -> None:
    ours, theirs = await register(hub), await register(hub)
    db = hub.runtime.db
    async with db.session(ours.id) as session:
        users = list(await session.scalars(select(User)))
        assert {u.organization_id for u in users} == {ours.id}
        assert await session.get(User, theirs.admin.user_id) is None
        assert await session.get(Organization, theirs.id) is None
        # Even an explicit filter on the other organization finds nothing.
        assert (
            await session.scalar(
                select(func.count()).select_from(User).where(User.organization_id == theirs.id)
            )
            == 0
        )
        # An ORM bulk update without any filter still touches only this organization.
        await session.execute(
            update(User).values(full_name="Renamed").execution_options(synchronize_session=False)
        )
        await session.commit()
    async with db.session(theirs.id) as session:
        their_admin = await session.get_one(User, theirs.admin.user_id)
        assert their_admin.full_name == "Amal Admin"


async def test_writes_to_another_organization_are_refused(hub: RunningHub) -> None:
    ours, theirs = await register(hub), await register(hub)
    async with hub.runtime.db.session(ours.id) as session:
        session.add(
            AuditEntry(organization_id=theirs.id, action="x", object_type="y", object_id=None, changes={})
        )
        with pytest.raises(TenancyError):
            await session.flush()
    async with hub.runtime.db.session(ours.id) as session:
        entry = AuditEntry(action="x", object_type="y", object_id=None, changes={})
        session.add(entry)
        await session.flush()
        assert entry.organization_id == ours.id  # stamped with the session's organization
        await session.rollback()


async def test_a_session_without_tenant_refuses_to_query(hub: RunningHub) -> None:
    session = hub.runtime.db._sessions()  # neither tenant nor system: what forgetting looks like
    async with session:
        with pytest.raises(TenancyError):
            await session.execute(select(User))


@pytest.mark.parametrize("hub", ["postgres"], indirect=True)
async def test_row_level_security_holds_for_raw_sql(hub: RunningHub) -> None:
    ours, theirs = await register(hub), await register(hub)
    await add_member(hub, theirs, "agent")
    async with hub.runtime.db.session(ours.id) as session:
        role = (
            await session.execute(
                text("SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
        assert role == (hub.settings.db_app_role, False, False)
        # Raw SQL bypasses the ORM, not the database.
        assert (await session.execute(text("SELECT count(*) FROM users"))).scalar() == 1
        assert (
            await session.execute(
                text("SELECT count(*) FROM users WHERE organization_id = :o"), {"o": theirs.id}
            )
        ).scalar() == 0
        assert (await session.execute(text("SELECT count(*) FROM organizations"))).scalar() == 1
        assert (
            await session.execute(
                text("SELECT count(*) FROM audit_log WHERE organization_id <> :o"), {"o": ours.id}
            )
        ).scalar() == 0
        updated = await session.execute(
            text("UPDATE users SET full_name = 'x' WHERE organization_id = :o"), {"o": theirs.id}
        )
        assert updated.rowcount == 0  # type: ignore[attr-defined]
    async with hub.runtime.db.session(ours.id) as session:
        with pytest.raises((DBAPIError, ProgrammingError)):
            await session.execute(
                text(
                    "INSERT INTO audit_log (id, organization_id, action, object_type, changes, created_at, updated_at)"
                    " VALUES (:id, :o, 'x', 'y', '{}', now(), now())"
                ),
                {"id": uuid.uuid4(), "o": theirs.id},
            )
    async with hub.runtime.db.session(ours.id) as session:
        # The tenant role may not switch row-level security off for itself.
        await session.execute(text("SET LOCAL row_security = off"))
        with pytest.raises((DBAPIError, ProgrammingError)):
            await session.execute(text("SELECT count(*) FROM users"))


async def test_system_sessions_see_across_organizations(hub: RunningHub) -> None:
    ours, theirs = await register(hub), await register(hub)
    async with hub.runtime.db.system_session() as session:
        ids = set(
            await session.scalars(select(Organization.id).where(Organization.id.in_([ours.id, theirs.id])))
        )
    assert ids == {ours.id, theirs.id}


@pytest.mark.parametrize("hub", ["postgres"], indirect=True)
async def test_leaving_the_tenant_role_gains_nothing(hub: RunningHub) -> None:
    """The hub's login is an ordinary one that inherits nothing: a statement that drops the
    tenant role (RESET ROLE) is left with a login that may read no table at all."""
    ours, theirs = await register(hub), await register(hub)
    async with hub.runtime.db.session(ours.id) as session:
        login = (
            await session.execute(
                text("SELECT rolsuper, rolbypassrls, rolinherit FROM pg_roles WHERE rolname = session_user")
            )
        ).one()
        assert tuple(login) == (False, False, False)
    statements = [
        "SELECT count(*) FROM users",
        "SELECT count(*) FROM organizations",
        "SELECT count(*) FROM messages",
        "SELECT count(*) FROM customers",
        f"UPDATE users SET full_name = 'x' WHERE organization_id = '{theirs.id}'",  # noqa: S608 - an id
    ]
    for statement in statements:
        async with hub.runtime.db.session(ours.id) as session:
            await session.execute(text("RESET ROLE"))
            assert (await session.execute(text("SELECT current_user = session_user"))).scalar() is True
            with pytest.raises((DBAPIError, ProgrammingError), match="permission denied"):
                await session.execute(text(statement))


@pytest.mark.parametrize("hub", ["postgres"], indirect=True)
async def test_every_tenant_table_forces_row_security(hub: RunningHub) -> None:
    """Even the owner of the tables reads them only through the policies."""
    async with hub.runtime.db.system_session() as session:
        tables = (
            await session.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                )
            )
        ).all()
    unprotected = {name for name, enabled, forced in tables if not (enabled and forced)}
    assert unprotected == {"alembic_version"}
    assert len(tables) > 30
