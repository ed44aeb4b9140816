"""Organizations: registering one with its first admin, its own settings, and which modules it
uses."""

from __future__ import annotations

import re
import secrets
import unicodedata
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import structlog
from msgspec import UNSET
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from hub import events
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, new_id, utcnow
from hub.errors import Conflict, InvalidInput
from hub.i18n import N_
from hub.models import ModuleSetting, Organization, User
from hub.permissions import MODULES
from hub.runtime import Runtime
from hub.schemas import ModuleSettings, OrganizationUpdate
from hub.security import hash_password
from hub.services.accounts import SignedIn, check_password, email_taken, normalize_email, sign_in
from hub.services.audit import record_audit

log = structlog.get_logger(__name__)


def slug_base(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60]


async def _unique_slug(runtime: Runtime, name: str) -> str:
    base = slug_base(name)
    meaningful = len(base) >= 3
    base = base if meaningful else "org"
    async with runtime.db.system_session() as session:
        taken = set(
            await session.scalars(select(Organization.slug).where(Organization.slug.like(f"{base}%")))
        )
    if meaningful and base not in taken:
        return base
    while True:
        candidate = f"{base}-{secrets.token_hex(3)}"
        if candidate not in taken:
            return candidate


async def create_organization(
    runtime: Runtime,
    *,
    organization_name: str,
    full_name: str,
    email: str,
    password: str,
    language: str | None,
) -> SignedIn:
    """A new organization and its first admin, in one transaction."""
    email = normalize_email(email)
    check_password(password, email=email, full_name=full_name)
    if await email_taken(runtime, email):
        raise Conflict(N_("An account with this e-mail already exists."), field="email")
    password_hash = await hash_password(password)
    for _attempt in range(3):
        organization_id = new_id()
        slug = await _unique_slug(runtime, organization_name)
        # One transaction, already as the new tenant: no organization is ever left without its admin.
        async with runtime.db.session(organization_id) as session:
            organization = Organization(
                id=organization_id,
                name=organization_name.strip(),
                slug=slug,
                default_language=language or "ar",
            )
            user = User(
                organization_id=organization_id,
                email=email,
                full_name=full_name.strip(),
                password_hash=password_hash,
                role="admin",
                preferred_language=language,
                last_login_at=utcnow(),
            )
            session.add(organization)
            await session.flush()
            session.add(user)
            await record_audit(
                session,
                actor_id=None,
                action="organization.registered",
                object_type="organization",
                object_id=organization_id,
                changes={"name": organization.name, "admin": email},
            )
            try:
                await session.flush()
            except IntegrityError:
                await session.rollback()
                if await email_taken(runtime, email):
                    raise Conflict(N_("An account with this e-mail already exists."), field="email") from None
                continue  # another registration took the slug meanwhile
            await events.publish(
                session, events.OrganizationRegistered(organization_id=organization_id, admin_id=user.id)
            )
            signed_in = await sign_in(runtime, session, user)
            await session.commit()
            return signed_in
    raise Conflict(N_("This conflicts with the current state."))


async def update_organization(
    session: HubAsyncSession, actor: CurrentUser, changes: OrganizationUpdate
) -> Organization:
    organization = await session.get_one(Organization, actor.organization_id)
    diff: dict[str, list[str]] = {}
    if changes.time_zone is not UNSET:
        try:
            ZoneInfo(changes.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(N_("This is not a known time zone."), field="time_zone") from None
    if changes.default_region and changes.default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidInput(N_("This is not a known country code."), field="default_region")
    for field in ("name", "default_language", "time_zone", "default_region"):
        value = getattr(changes, field)
        if value is not UNSET and value != getattr(organization, field):
            diff[field] = [getattr(organization, field), value]
            setattr(organization, field, value.strip() if field == "name" and value else value)
    if diff:
        await record_audit(
            session,
            actor_id=actor.id,
            action="organization.updated",
            object_type="organization",
            object_id=organization.id,
            changes=diff,
        )
    await session.commit()
    return organization


async def module_settings(session: HubAsyncSession) -> dict[str, bool]:
    stored = {
        module: enabled
        for module, enabled in await session.execute(select(ModuleSetting.module, ModuleSetting.enabled))
    }
    return {module: stored.get(module, True) for module in MODULES}


async def update_module_settings(
    session: HubAsyncSession, actor: CurrentUser, changes: ModuleSettings
) -> dict[str, bool]:
    wanted = changes.changes()
    existing = {s.module: s for s in await session.scalars(select(ModuleSetting))}
    diff: dict[str, list[bool]] = {}
    for module, enabled in wanted.items():
        setting = existing.get(module)
        before = setting.enabled if setting else True
        if before == enabled:
            continue
        diff[module] = [before, enabled]
        if setting is None:
            session.add(ModuleSetting(module=module, enabled=enabled))
        else:
            setting.enabled = enabled
    if diff:
        await record_audit(
            session,
            actor_id=actor.id,
            action="settings.modules_changed",
            object_type="organization",
            object_id=actor.organization_id,
            changes=diff,
        )
        await events.publish(
            session,
            events.ModuleSettingsChanged(
                organization_id=actor.organization_id, modules={m: v[1] for m, v in diff.items()}
            ),
        )
    await session.commit()
    return await module_settings(session)
