"""The team: invitations, joining, roles, removal and each person's profile; and the rule that
an agent works on what is assigned to them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog
from msgspec import UNSET
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from hub import events
from hub.auth import CurrentUser
from hub.billing.services.limits import require_room
from hub.db import HubAsyncSession, utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_, translate
from hub.mail import send_mail
from hub.models import Invitation, Organization, User
from hub.pagination import paginate
from hub.permissions import ROLE_NAMES
from hub.realtime import user_room
from hub.runtime import Runtime
from hub.schemas import ProfileUpdate
from hub.security import hash_password, new_secret_token, token_digest
from hub.services.accounts import SignedIn, check_password, email_taken, normalize_email, sign_in
from hub.services.audit import record_audit

log = structlog.get_logger(__name__)


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
    if await email_taken(runtime, invitation.email):
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
        signed_in = await sign_in(runtime, session, user)
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
    if await email_taken(runtime, email):
        raise Conflict(N_("An account with this e-mail already exists."), field="email")
    await require_room(session, "agents")  # a seat of the plan (402 when they are all taken)
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


def pending_invitations() -> Select[Invitation]:
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


async def active_user(session: HubAsyncSession, user_id: uuid.UUID) -> User:
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
    user = await active_user(session, user_id)
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
    user = await active_user(session, user_id)
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
    user = await active_user(session, actor.id)
    if changes.full_name is not UNSET:
        user.full_name = changes.full_name.strip()
    if changes.preferred_language is not UNSET:
        user.preferred_language = changes.preferred_language
    await session.commit()
    return user


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
