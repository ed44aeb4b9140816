"""The permission matrix of seed 003, through the one guard, for every role and area."""

from __future__ import annotations

import pytest

from hub.permissions import AREAS, ROLES, can, level_of
from tests.conftest import Organization, RunningHub

# Seed 003, "Permission Matrix", written out again by hand: the code must agree with the seed.
SEED_MATRIX = {
    "admin": {
        "users": "write",
        "crm": "write",
        "ticketing": "write",
        "whatsapp": "write",
        "campaigns": "write",
        "billing": "write",
        "settings": "write",
    },
    "manager": {
        "users": "read",
        "crm": "write",
        "ticketing": "write",
        "whatsapp": "write",
        "campaigns": "write",
        "billing": "read",
        "settings": "read",
    },
    "agent": {
        "users": "none",
        "crm": "read",
        "ticketing": "write",
        "whatsapp": "write",
        "campaigns": "none",
        "billing": "none",
        "settings": "none",
    },
    "member": {
        "users": "none",
        "crm": "read",
        "ticketing": "read",
        "whatsapp": "read",
        "campaigns": "none",
        "billing": "none",
        "settings": "none",
    },
}
RANK = {"none": 0, "read": 1, "write": 2}


@pytest.mark.parametrize("role", ROLES)
def test_matrix_matches_the_seed(role: str) -> None:
    for area in AREAS:
        for level in ("read", "write"):
            assert can(role, area, level) == (RANK[SEED_MATRIX[role][area]] >= RANK[level]), (
                role,
                area,
                level,
            )


async def test_guard_enforces_the_matrix_for_every_role_and_area(
    hub: RunningHub, organization: Organization
) -> None:
    for role, member in organization.members.items():
        async with hub.client(member.token) as client:
            for area in AREAS:
                for level in ("read", "write"):
                    response = await client.get(f"/api/probe/{area}/{level}")
                    allowed = RANK[SEED_MATRIX[role][area]] >= RANK[level]
                    assert response.status_code == (200 if allowed else 403), (
                        role,
                        area,
                        level,
                        response.text,
                    )


async def test_unauthenticated_probe_is_401(hub: RunningHub) -> None:
    async with hub.client() as client:
        response = await client.get("/api/probe/crm/read")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/users", {"admin", "manager"}),
        ("POST", "/api/users/invite", {"admin"}),
        ("GET", "/api/settings/organization", {"admin", "manager"}),
        ("PATCH", "/api/settings/organization", {"admin"}),
        ("GET", "/api/settings/modules", {"admin", "manager"}),
        ("PATCH", "/api/settings/modules", {"admin"}),
        ("GET", "/api/audit", {"admin"}),
        ("GET", "/api/users/me", {"admin", "manager", "agent", "member"}),
    ],
)
async def test_kernel_endpoints_follow_the_matrix(
    hub: RunningHub, organization: Organization, method: str, path: str, allowed: set[str]
) -> None:
    bodies = {
        "/api/users/invite": {"email": "not-sent@example.test", "role": "agent"},
        "/api/settings/organization": {},
        "/api/settings/modules": {},
    }
    for role, member in organization.members.items():
        async with hub.client(member.token) as client:
            response = await client.request(method, path, json=bodies.get(path) if method != "GET" else None)
        if role in allowed:
            assert response.status_code in (200, 201), (role, path, response.text)
        else:
            assert response.status_code == 403, (role, path, response.text)


async def test_a_switched_off_module_answers_403_saying_so(
    hub: RunningHub, organization: Organization
) -> None:
    admin = organization.admin
    async with hub.client(admin.token, language="en") as client:
        assert (await client.get("/api/probe/crm/read")).status_code == 200
        changed = await client.patch("/api/settings/modules", json={"crm": False})
        assert changed.status_code == 200
        assert changed.json() == {
            "whatsapp": True,
            "crm": False,
            "ticketing": True,
            "campaigns": True,
            "billing": True,
            "ai": True,
        }
        refused = await client.get("/api/probe/crm/read")
        assert refused.status_code == 403
        assert refused.json()["detail"] == "The CRM module is switched off for this organization."
        # Other modules and the kernel stay on.
        assert (await client.get("/api/probe/ticketing/write")).status_code == 200
        assert (await client.get("/api/probe/settings/write")).status_code == 200
    async with hub.client(admin.token, language="ar") as client:
        refused = await client.get("/api/probe/crm/read")
        assert refused.json()["detail"] == "وحدة إدارة العملاء معطّلة في هذه المؤسسة."
        assert (await client.patch("/api/settings/modules", json={"crm": True})).status_code == 200
        assert (await client.get("/api/probe/crm/read")).status_code == 200
        unknown = await client.patch("/api/settings/modules", json={"fax": True})
        assert unknown.status_code == 400
        assert unknown.json()["errors"][0]["field"] == "fax"


async def test_the_session_says_what_the_role_may_do_with_switched_off_modules_at_none(
    hub: RunningHub, organization: Organization
) -> None:
    """What the console shows follows these; the API enforces the same matrix on every call."""
    for role, member in organization.members.items():
        async with hub.client(member.token) as client:
            permissions = (await client.get("/api/auth/me")).json()["permissions"]
        assert permissions == {area: level_of(role, area).name for area in AREAS}, role
    async with hub.client(organization.admin.token) as client:
        assert (await client.patch("/api/settings/modules", json={"campaigns": False})).status_code == 200
        try:
            async with hub.client(organization.members["manager"].token) as manager:
                permissions = (await manager.get("/api/auth/me")).json()["permissions"]
            assert permissions["campaigns"] == "none"
            assert permissions["crm"] == "write"
        finally:
            await client.patch("/api/settings/modules", json={"campaigns": True})


async def test_role_change_takes_effect_on_the_next_request(
    hub: RunningHub, organization: Organization
) -> None:
    member = organization.members["member"]
    async with hub.client(member.token) as client:
        assert (await client.get("/api/users")).status_code == 403
    async with hub.client(organization.admin.token) as admin:
        changed = await admin.patch(f"/api/users/{member.user_id}/role", json={"role": "manager"})
        assert changed.status_code == 200
        assert changed.json()["role"] == "manager"
    async with hub.client(member.token) as client:
        assert (await client.get("/api/users")).status_code == 200
