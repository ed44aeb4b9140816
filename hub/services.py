"""The kernel's business rules: organizations, accounts, invitations, roles, settings and audit."""

from __future__ import annotations

import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import structlog
from msgspec import UNSET
from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError

from hub import events
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, insert_for, new_id, utcnow
from hub.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, TooManyRequests
from hub.i18n import N_, choose_language, translate
from hub.mail import send_mail
from hub.models import (
    AuditEntry,
    Invitation,
    ModuleSetting,
    Organization,
    PasswordReset,
    RevokedToken,
    UsageCounter,
    User,
)
from hub.pagination import paginate
from hub.permissions import MODULES, ROLE_NAMES
from hub.realtime import token_room, user_room
from hub.runtime import Runtime, current
from hub.schemas import ModuleSettings, OrganizationUpdate, ProfileUpdate
from hub.security import (
    AccessToken,
    hash_password,
    issue_access_token,
    new_secret_token,
    password_weakness,
    token_digest,
    verify_password,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: AccessToken
    user: User
    organization: Organization


def normalize_email(email: str) -> str:
    return email.strip().lower()


def check_password(password: str, *, email: str, full_name: str = "") -> None:
    reason = password_weakness(password, email=email, full_name=full_name)
    if reason:
        raise InvalidInput(reason, field="password")


def slug_base(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60]


async def record_audit(
    session: HubAsyncSession,
    *,
    actor_id: uuid.UUID | None,
    action: str,
    object_type: str,
    object_id: uuid.UUID | None,
    changes: dict[str, Any] | None = None,
) -> None:
    """Who changed what; written in the same transaction as the change itself."""
    session.add(
        AuditEntry(
            actor_id=actor_id,
            action=action,
            object_type=object_type,
            object_id=object_id,
            changes=changes or {},
        )
    )


async def _email_taken(runtime: Runtime, email: str) -> bool:
    async with runtime.db.system_session() as session:
        return await session.scalar(select(func.count()).select_from(User).where(User.email == email)) > 0


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


async def _sign_in(runtime: Runtime, session: HubAsyncSession, user: User) -> SignedIn:
    organization = await session.get_one(Organization, user.organization_id)
    token = issue_access_token(
        runtime.settings,
        user_id=user.id,
        organization_id=user.organization_id,
        session_version=user.session_version or 0,
    )
    return SignedIn(token=token, user=user, organization=organization)


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
    if await _email_taken(runtime, email):
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
                if await _email_taken(runtime, email):
                    raise Conflict(N_("An account with this e-mail already exists."), field="email") from None
                continue  # another registration took the slug meanwhile
            await events.publish(
                session, events.OrganizationRegistered(organization_id=organization_id, admin_id=user.id)
            )
            signed_in = await _sign_in(runtime, session, user)
            await session.commit()
            return signed_in
    raise Conflict(N_("This conflicts with the current state."))


def _failure_keys(email: str, address: str) -> dict[str, str]:
    return {
        "pair": f"login:pair:{email}:{address}",
        "account": f"login:acct:{email}",
        "address": f"login:addr:{address}",
    }


async def _refuse_while_throttled(runtime: Runtime, email: str, address: str) -> None:
    """Failed sign-ins are counted three ways. The tight limit is per account and address
    together, so a stranger's guesses from one place never lock the owner out of theirs; the
    account-wide limit is much looser (guesses spread over many addresses); and one address may
    try only so many accounts."""
    settings = runtime.settings
    keys = _failure_keys(email, address)
    limits = {
        "pair": settings.login_failures_per_pair,
        "account": settings.login_failures_per_account,
        "address": settings.login_failures_per_address,
    }
    for name, key in keys.items():
        if await runtime.counters.count(key) >= limits[name]:
            raise TooManyRequests(
                N_("Too many failed sign-in attempts. Try again later."),
                headers={"Retry-After": str(settings.login_failure_window_seconds)},
            )


async def _count_failure(runtime: Runtime, email: str, address: str) -> None:
    for key in _failure_keys(email, address).values():
        await runtime.counters.hit(key, runtime.settings.login_failure_window_seconds)


async def login(runtime: Runtime, *, email: str, password: str, address: str) -> SignedIn:
    email = normalize_email(email)
    await _refuse_while_throttled(runtime, email, address)
    async with runtime.db.system_session() as system:
        found = await system.scalar(select(User).where(User.email == email, User.is_active.is_(True)))
    if not await verify_password(found.password_hash if found else None, password) or found is None:
        await _count_failure(runtime, email, address)
        raise NotAuthenticated(N_("The e-mail or password is not correct."))
    await runtime.counters.reset(_failure_keys(email, address)["pair"])
    async with runtime.db.session(found.organization_id) as session:
        user = await session.get_one(User, found.id)
        user.last_login_at = utcnow()
        signed_in = await _sign_in(runtime, session, user)
        await session.commit()
    return signed_in


async def logout(runtime: Runtime, user: CurrentUser) -> None:
    async with runtime.db.session(user.organization_id) as session:
        session.add(RevokedToken(jti=user.token_id, user_id=user.id, expires_at=user.token_expires_at))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()  # already revoked
    if runtime.pusher is not None:
        await runtime.pusher.close_sockets(token_room(user.token_id), "logged_out")


async def request_password_reset(runtime: Runtime, *, email: str, address: str, base_url: str) -> None:
    """Always quiet: whether the account exists is never revealed, and mail bombing is capped."""
    email = normalize_email(email)
    window = 3600
    if (
        await runtime.counters.hit(f"reset:acct:{email}", window) > 5
        or await runtime.counters.hit(f"reset:addr:{address}", window) > 30
    ):
        log.warning("password reset throttled")
        return
    async with runtime.db.system_session() as system:
        found = await system.scalar(select(User).where(User.email == email, User.is_active.is_(True)))
    if found is None:
        return
    async with runtime.db.session(found.organization_id) as session:
        await events.publish(
            session,
            events.PasswordResetRequested(
                organization_id=found.organization_id, user_id=found.id, base_url=base_url
            ),
        )
        await session.commit()


@events.handles(events.PasswordResetRequested, name="hub.send_password_reset")
async def send_password_reset(event: events.PasswordResetRequested) -> None:
    """Makes the one-time link here, so the token itself never sits in the outbox."""
    runtime = current()
    settings = runtime.settings
    token = new_secret_token()
    async with runtime.db.session(event.organization_id) as session:
        user = await session.get(User, event.user_id)
        if user is None or not user.is_active:
            return
        organization = await session.get_one(Organization, event.organization_id)
        # Only the newest link works: the ones sent before it are spent.
        await session.execute(
            update(PasswordReset)
            .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        session.add(
            PasswordReset(
                user_id=user.id,
                token_digest=token_digest(token),
                expires_at=utcnow() + timedelta(minutes=settings.password_reset_minutes),
            )
        )
        await session.commit()
        email, language = (
            user.email,
            choose_language(
                preferred=user.preferred_language,
                accept_language=None,
                organization_default=organization.default_language,
            ),
        )
    link = f"{event.base_url}/reset-password?token={token}"
    await send_mail(
        settings,
        to=email,
        subject=translate(language, N_("Reset your password")),
        body=translate(
            language,
            N_(
                "Someone asked to reset the password of your account. Open this link within {minutes} "
                "minutes to choose a new one:\n\n{link}\n\nIf it was not you, ignore this message."
            ),
            minutes=settings.password_reset_minutes,
            link=link,
        ),
    )


async def reset_password(runtime: Runtime, *, token: str, password: str) -> None:
    """A new password through the newest reset link, once; every session the account had ends."""
    async with runtime.db.system_session() as system:
        reset = await system.scalar(
            select(PasswordReset).where(PasswordReset.token_digest == token_digest(token))
        )
    if reset is None or reset.used_at is not None or reset.expires_at < utcnow():
        raise InvalidInput(N_("This reset link is invalid or has expired."), field="token")
    async with runtime.db.session(reset.organization_id) as session:
        user = await session.get_one(User, reset.user_id)
        check_password(password, email=user.email, full_name=user.full_name)
        fresh = await session.get_one(PasswordReset, reset.id, with_for_update=True)
        if fresh.used_at is not None:
            raise InvalidInput(N_("This reset link is invalid or has expired."), field="token")
        await _set_password(session, user, password)
        await record_audit(
            session, actor_id=user.id, action="user.password_reset", object_type="user", object_id=user.id
        )
        await session.commit()
    await runtime.counters.reset(f"login:acct:{user.email}")  # the owner proved it is theirs
    await _end_sessions(runtime, user.id)


async def change_password(
    runtime: Runtime, actor: CurrentUser, *, current_password: str, password: str, address: str
) -> SignedIn:
    """A signed-in user's new password: the current one is asked for (and wrong guesses count
    as failed sign-ins); every session ends, and the caller gets a fresh one."""
    await _refuse_while_throttled(runtime, actor.email, address)
    async with runtime.db.session(actor.organization_id) as session:
        user = await _active_user(session, actor.id)
        if not await verify_password(user.password_hash, current_password):
            await _count_failure(runtime, user.email, address)
            raise InvalidInput(N_("The current password is not correct."), field="current_password")
        check_password(password, email=user.email, full_name=user.full_name)
        await _set_password(session, user, password)
        await record_audit(
            session, actor_id=user.id, action="user.password_changed", object_type="user", object_id=user.id
        )
        signed_in = await _sign_in(runtime, session, user)
        await session.commit()
    await _end_sessions(runtime, user.id)
    return signed_in


async def _set_password(session: HubAsyncSession, user: User, password: str) -> None:
    """The new password, every access token issued before it void, and every reset link spent."""
    user.password_hash = await hash_password(password)
    user.session_version = (user.session_version or 0) + 1
    await session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def _end_sessions(runtime: Runtime, user_id: uuid.UUID) -> None:
    if runtime.pusher is not None:
        await runtime.pusher.close_sockets(user_room(user_id), "password_changed")


async def accept_invitation(
    runtime: Runtime, *, token: str, full_name: str, password: str, language: str | None
) -> SignedIn:
    async with runtime.db.system_session() as system:
        invitation = await system.scalar(
            select(Invitation).where(Invitation.token_digest == token_digest(token))
        )
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at < utcnow():
        raise InvalidInput(N_("This invitation is invalid or has expired."), field="token")
    check_password(password, email=invitation.email, full_name=full_name)
    if await _email_taken(runtime, invitation.email):
        raise Conflict(N_("An account with this e-mail already exists."), field="email")
    password_hash = await hash_password(password)
    async with runtime.db.session(invitation.organization_id) as session:
        pending = await session.get_one(Invitation, invitation.id)
        if pending.accepted_at is not None:
            raise InvalidInput(N_("This invitation is invalid or has expired."), field="token")
        pending.accepted_at = utcnow()
        user = User(
            email=invitation.email,
            full_name=full_name.strip(),
            password_hash=password_hash,
            role=invitation.role,
            preferred_language=language,
            last_login_at=utcnow(),
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError:
            await session.rollback()
            raise Conflict(N_("An account with this e-mail already exists."), field="email") from None
        await record_audit(
            session,
            actor_id=user.id,
            action="user.joined",
            object_type="user",
            object_id=user.id,
            changes={"role": user.role, "invited_by": str(invitation.invited_by_id)},
        )
        await events.publish(
            session,
            events.UserJoined(organization_id=invitation.organization_id, user_id=user.id, role=user.role),
        )
        signed_in = await _sign_in(runtime, session, user)
        await session.commit()
    return signed_in


async def list_users(
    session: HubAsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[User], str | None]:
    rows, next_cursor = await paginate(
        session,
        select(User).where(User.is_active.is_(True)),
        User.id,
        cursor=cursor,
        limit=limit,
        newest_first=False,
    )
    return [row[0] for row in rows], next_cursor


async def invite_user(
    runtime: Runtime,
    session: HubAsyncSession,
    actor: CurrentUser,
    *,
    email: str,
    role: str,
    language: str,
    base_url: str,
) -> tuple[Invitation, str]:
    """An invitation and its link; the link is also e-mailed when SMTP is configured."""
    email = normalize_email(email)
    if await _email_taken(runtime, email):
        raise Conflict(N_("An account with this e-mail already exists."), field="email")
    token = new_secret_token()
    invitation = Invitation(
        email=email,
        role=role,
        token_digest=token_digest(token),
        invited_by_id=actor.id,
        expires_at=utcnow() + timedelta(days=runtime.settings.invitation_days),
    )
    session.add(invitation)
    await session.flush()
    await record_audit(
        session,
        actor_id=actor.id,
        action="user.invited",
        object_type="invitation",
        object_id=invitation.id,
        changes={"email": email, "role": role},
    )
    link = f"{base_url}/accept-invitation?token={token}"
    organization = await session.get_one(Organization, actor.organization_id)
    subject = translate(
        language, N_("You are invited to join {organization}"), organization=organization.name
    )
    body = translate(
        language,
        N_("{inviter} invited you to join {organization} as {role}. Open this link to accept:\n\n{link}"),
        inviter=actor.full_name,
        organization=organization.name,
        role=ROLE_NAMES[role],
        link=link,
    )

    async def mail_invitation() -> None:
        await send_mail(runtime.settings, to=email, subject=subject, body=body)

    session.after_commit(mail_invitation)
    await session.commit()
    return invitation, link


def pending_invitations() -> Select[tuple[Invitation]]:
    """Invitations nobody has accepted yet and that still work."""
    return select(Invitation).where(Invitation.accepted_at.is_(None), Invitation.expires_at > utcnow())


async def revoke_invitation(session: HubAsyncSession, actor: CurrentUser, invitation_id: uuid.UUID) -> None:
    """Its link stops working at once; an accepted or another organization's invitation is not found."""
    invitation = await session.scalar(pending_invitations().where(Invitation.id == invitation_id))
    if invitation is None:
        raise NotFound()
    await session.delete(invitation)
    await record_audit(
        session,
        actor_id=actor.id,
        action="invitation.revoked",
        object_type="invitation",
        object_id=invitation.id,
        changes={"email": invitation.email, "role": invitation.role},
    )
    await session.commit()


async def _active_user(session: HubAsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound()
    return user


async def _admin_count(session: HubAsyncSession) -> int:
    return (
        await session.scalar(
            select(func.count()).select_from(User).where(User.role == "admin", User.is_active.is_(True))
        )
        or 0
    )


async def _close_user_sockets(runtime: Runtime, user_id: uuid.UUID, reason: str) -> None:
    if runtime.pusher is not None:
        await runtime.pusher.close_sockets(user_room(user_id), reason)


async def change_role(
    runtime: Runtime, session: HubAsyncSession, actor: CurrentUser, *, user_id: uuid.UUID, role: str
) -> User:
    user = await _active_user(session, user_id)
    old_role = user.role
    if old_role == role:
        return user
    if old_role == "admin" and await _admin_count(session) <= 1:
        raise Conflict(N_("The organization must keep at least one admin."), field="role")
    user.role = role
    await record_audit(
        session,
        actor_id=actor.id,
        action="user.role_changed",
        object_type="user",
        object_id=user.id,
        changes={"role": [old_role, role]},
    )
    await events.publish(
        session,
        events.UserRoleChanged(
            organization_id=actor.organization_id, user_id=user.id, old_role=old_role, new_role=role
        ),
    )
    await session.commit()
    # Its sockets sit in the old role's room: close them so they come back with the new access.
    await _close_user_sockets(runtime, user.id, "role_changed")
    return user


async def remove_user(
    runtime: Runtime, session: HubAsyncSession, actor: CurrentUser, *, user_id: uuid.UUID
) -> None:
    user = await _active_user(session, user_id)
    if user.role == "admin" and await _admin_count(session) <= 1:
        raise Conflict(N_("The organization must keep at least one admin."), field="id")
    # Deactivated rather than deleted: their messages and tickets keep naming who did them.
    user.is_active = False
    user.email = f"removed+{user.id.hex}@{user.email.split('@', 1)[-1]}"
    await record_audit(
        session,
        actor_id=actor.id,
        action="user.removed",
        object_type="user",
        object_id=user.id,
        changes={"full_name": user.full_name},
    )
    await events.publish(session, events.UserRemoved(organization_id=actor.organization_id, user_id=user.id))
    await session.commit()
    await _close_user_sockets(runtime, user.id, "removed")


async def update_profile(session: HubAsyncSession, actor: CurrentUser, changes: ProfileUpdate) -> User:
    user = await _active_user(session, actor.id)
    if changes.full_name is not UNSET:
        user.full_name = changes.full_name.strip()
    if changes.preferred_language is not UNSET:
        user.preferred_language = changes.preferred_language
    await session.commit()
    return user


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


async def list_audit(
    session: HubAsyncSession, *, cursor: str | None, limit: int, object_type: str | None = None
) -> tuple[list[tuple[AuditEntry, str | None]], str | None]:
    statement = select(AuditEntry, User.full_name).outerjoin(User, User.id == AuditEntry.actor_id)
    if object_type:
        statement = statement.where(AuditEntry.object_type == object_type)
    rows, next_cursor = await paginate(session, statement, AuditEntry.id, cursor=cursor, limit=limit)
    return [(row[0], row[1]) for row in rows], next_cursor


def assigned_to(column: Any, assignee: str, user: CurrentUser) -> Any:
    """The condition of a list's `assignee` filter: `me`, `unassigned` or a user's id."""
    if assignee == "me":
        return column == user.id
    if assignee == "unassigned":
        return column.is_(None)
    try:
        return column == uuid.UUID(assignee)
    except ValueError:
        raise InvalidInput(N_('Use "me", "unassigned" or a user\'s id.'), field="assignee") from None


# Usage, counted per organization and calendar month for billing


def usage_month(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


async def count_usage(session: HubAsyncSession, metric: str, quantity: int = 1) -> None:
    """Add to this month's figure in the caller's transaction: one upsert, so senders in every
    process add up without reading first."""
    if quantity <= 0:
        return
    now = utcnow()
    table = UsageCounter.__table__
    statement = insert_for(session, table).values(
        id=new_id(),
        organization_id=session.organization_id,
        month=usage_month(now),
        metric=metric,
        quantity=quantity,
        created_at=now,
        updated_at=now,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["organization_id", "month", "metric"],
            set_={"quantity": table.c.quantity + statement.excluded.quantity, "updated_at": now},
        )
    )


async def usage_of(session: HubAsyncSession, month: str) -> dict[str, int]:
    rows = await session.execute(
        select(UsageCounter.metric, UsageCounter.quantity).where(UsageCounter.month == month)
    )
    return {metric: int(quantity) for metric, quantity in rows}
