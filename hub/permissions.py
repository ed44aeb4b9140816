"""Roles, the permission matrix (seed 003) and the one guard every controller uses."""

from __future__ import annotations

from collections.abc import Collection
from enum import IntEnum
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard
from sqlalchemy import select

from hub.errors import Forbidden, NotAuthenticated
from hub.i18n import N_, Term

ROLES = ("admin", "manager", "agent", "member")
ROLE_NAMES = {
    "admin": Term(N_("admin")),
    "manager": Term(N_("manager")),
    "agent": Term(N_("agent")),
    "member": Term(N_("member")),
}
AREAS = ("users", "crm", "ticketing", "whatsapp", "campaigns", "billing", "settings")
# Areas an organization may switch off; users and settings are the kernel and always on.
MODULES = ("whatsapp", "crm", "ticketing", "campaigns", "billing", "ai")
MODULE_NAMES = {
    "whatsapp": Term(N_("WhatsApp")),
    "crm": Term(N_("CRM")),
    "ticketing": Term(N_("Ticketing")),
    "campaigns": Term(N_("Campaigns")),
    "billing": Term(N_("Billing")),
    "ai": Term(N_("AI assistance")),
}


class Level(IntEnum):
    none = 0
    read = 1
    write = 2


_N, _R, _W = Level.none, Level.read, Level.write
MATRIX: dict[str, dict[str, Level]] = {
    "admin": dict.fromkeys(AREAS, _W),
    "manager": {
        "users": _R,
        "crm": _W,
        "ticketing": _W,
        "whatsapp": _W,
        "campaigns": _W,
        "billing": _R,
        "settings": _R,
    },
    # Agents write tickets and chats, but only those assigned to them: the owning services enforce it.
    "agent": {
        "users": _N,
        "crm": _R,
        "ticketing": _W,
        "whatsapp": _W,
        "campaigns": _N,
        "billing": _N,
        "settings": _N,
    },
    "member": {
        "users": _N,
        "crm": _R,
        "ticketing": _R,
        "whatsapp": _R,
        "campaigns": _N,
        "billing": _N,
        "settings": _N,
    },
}


def level_of(role: str, area: str) -> Level:
    return MATRIX.get(role, {}).get(area, Level.none)


def can(role: str, area: str, level: Level | str) -> bool:
    wanted = Level[level] if isinstance(level, str) else level
    return level_of(role, area) >= wanted


def roles_with(area: str, level: Level | str) -> tuple[str, ...]:
    """The roles that may read (or write) an area: who may receive its real-time events."""
    return tuple(role for role in ROLES if can(role, area, level))


async def module_switched_on(session: Any, module: str) -> bool:
    """Whether the session's organization has the module on (modules are on unless switched off)."""
    from hub.models import ModuleSetting

    enabled = await session.scalar(select(ModuleSetting.enabled).where(ModuleSetting.module == module))
    return enabled is not False


async def module_enabled(connection: ASGIConnection[Any, Any, Any, Any], module: str) -> bool:
    from hub.runtime import runtime_of

    async with runtime_of(connection).db.session(connection.user.organization_id) as session:
        return await module_switched_on(session, module)


# The modules a billing plan includes or not (billing's own page is always there).
PLAN_MODULES = ("whatsapp", "crm", "ticketing", "campaigns", "ai")


async def _module_in_plan(connection: ASGIConnection[Any, Any, Any, Any], area: str) -> None:
    """Work in a module the organization's plan leaves out is 402 (reading it never is)."""
    from hub.billing.services.limits import billing_on, require_module
    from hub.runtime import runtime_of

    if not billing_on():
        return
    async with runtime_of(connection).db.session(connection.user.organization_id) as session:
        await require_module(session, area, MODULE_NAMES[area])


def requires(area: str, level: Level | str = Level.read) -> Guard:
    """A guard: the caller's role reaches `level` in `area`, and the area's module is switched on."""
    if area not in AREAS:
        raise ValueError(f"unknown area {area!r}")
    wanted = Level[level] if isinstance(level, str) else level

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        user = connection.scope.get("user")
        if user is None:
            raise NotAuthenticated()
        if not can(user.role, area, wanted):
            raise Forbidden()
        if area in MODULES:
            await _module_usable(connection, area, working=wanted >= Level.write)

    guard.__name__ = f"requires_{area}_{wanted.name}"
    # Said in the API's description: work in a module the plan may leave out can be 402.
    guard.plan_gated = wanted >= Level.write and area in PLAN_MODULES  # type: ignore[attr-defined]
    return guard


def module_on(module: str) -> Guard:
    """A guard for work in a module that is not an area of the matrix (`ai`): switched on by the
    organization (403) and in its plan (402)."""
    if module not in MODULES:
        raise ValueError(f"unknown module {module!r}")

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        await _module_usable(connection, module, working=True)

    guard.__name__ = f"module_{module}_on"
    guard.plan_gated = module in PLAN_MODULES  # type: ignore[attr-defined]
    return guard


async def _module_usable(
    connection: ASGIConnection[Any, Any, Any, Any], module: str, *, working: bool
) -> None:
    if not await module_enabled(connection, module):
        raise Forbidden(
            N_("The {module} module is switched off for this organization."), module=MODULE_NAMES[module]
        )
    if working and module in PLAN_MODULES:
        await _module_in_plan(connection, module)


def permissions_of(role: str, switched_off: Collection[str] = ()) -> dict[str, str]:
    """Each area's level for a role, as the console reads it: "none" where its module is off."""
    return {area: "none" if area in switched_off else level_of(role, area).name for area in AREAS}
