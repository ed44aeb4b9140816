"""Passwords: reset links sent by e-mail (each new one spends the earlier ones), resets and
changes, each ending every earlier session."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy import select, update

from hub import events
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, utcnow
from hub.errors import InvalidInput
from hub.i18n import N_, choose_language, translate
from hub.mail import send_mail
from hub.models import Organization, PasswordReset, User
from hub.realtime import user_room
from hub.runtime import Runtime, current
from hub.security import hash_password, new_secret_token, token_digest, verify_password
from hub.services.accounts import (
    SignedIn,
    check_password,
    count_failure,
    normalize_email,
    refuse_while_throttled,
    sign_in,
)
from hub.services.audit import record_audit
from hub.services.team import active_user

log = structlog.get_logger(__name__)


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
    await refuse_while_throttled(runtime, actor.email, address)
    async with runtime.db.session(actor.organization_id) as session:
        user = await active_user(session, actor.id)
        if not await verify_password(user.password_hash, current_password):
            await count_failure(runtime, user.email, address)
            raise InvalidInput(N_("The current password is not correct."), field="current_password")
        check_password(password, email=user.email, full_name=user.full_name)
        await _set_password(session, user, password)
        await record_audit(
            session, actor_id=user.id, action="user.password_changed", object_type="user", object_id=user.id
        )
        signed_in = await sign_in(runtime, session, user)
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
