"""Who may read what, in one place: the audience of every socket event.

An event reaches the roles that read its module under the permission matrix, and users named
one by one; agents read chats and tickets only when they are assigned to them, so an agent is
named as the assignee, never reached through the agent role.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from hub.permissions import roles_with

# Roles whose people see only what is assigned to them, in the modules that assign work.
ASSIGNED_ONLY = ("agent",)


@dataclass(frozen=True, slots=True)
class Audience:
    roles: tuple[str, ...] = ()
    user_ids: tuple[uuid.UUID, ...] = ()


def people(user_ids: Iterable[uuid.UUID | None]) -> Audience:
    """These people only (the one who started an import, the holder of a conversation)."""
    return Audience(user_ids=tuple(dict.fromkeys(u for u in user_ids if u is not None)))


def readers_of(module: str) -> Audience:
    """Everyone whose role reads the module."""
    return Audience(roles=tuple(roles_with(module, "read")))


def writers_of(module: str) -> Audience:
    """Everyone whose role changes the module (who manages channels, say)."""
    return Audience(roles=tuple(roles_with(module, "write")))


def readers_of_assigned(module: str, *assignees: uuid.UUID | None) -> Audience:
    """Everyone who reads every item of the module, and the people it is assigned to."""
    roles = tuple(role for role in roles_with(module, "read") if role not in ASSIGNED_ONLY)
    return Audience(roles=roles, user_ids=people(assignees).user_ids)


def assigners_of(module: str) -> Audience:
    """Who hands out the module's work: the roles that change every item (admins and managers)."""
    roles = tuple(role for role in roles_with(module, "write") if role not in ASSIGNED_ONLY)
    return Audience(roles=roles)


def chat_readers(*assignees: uuid.UUID | None) -> Audience:
    """A conversation's events: the roles that read every chat, and its assignees."""
    return readers_of_assigned("whatsapp", *assignees)


def ticket_readers(*assignees: uuid.UUID | None) -> Audience:
    """A ticket's events: the roles that read every ticket, and its assignees."""
    return readers_of_assigned("ticketing", *assignees)


def campaign_readers() -> Audience:
    """Campaigns are followed by whoever reads them (admins and managers)."""
    return readers_of("campaigns")


def crm_readers() -> Audience:
    return readers_of("crm")


def channel_managers() -> Audience:
    """Who connects numbers and watches their QR codes: the roles that read the settings."""
    return readers_of("settings")
