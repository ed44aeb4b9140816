"""Signing in and out: passwords checked with argon2, failures throttled per account and address,
and tokens revoked at logout."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hub.auth import CurrentUser
from hub.db import HubAsyncSession, utcnow
from hub.errors import InvalidInput, NotAuthenticated, TooManyRequests
from hub.i18n import N_
from hub.models import Organization, RevokedToken, User
from hub.realtime import token_room
from hub.runtime import Runtime
from hub.security import AccessToken, issue_access_token, password_weakness, verify_password

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


async def email_taken(runtime: Runtime, email: str) -> bool:
    async with runtime.db.system_session() as session:
        taken = await session.scalar(select(func.count()).select_from(User).where(User.email == email))
        return bool(taken)


async def sign_in(runtime: Runtime, session: HubAsyncSession, user: User) -> SignedIn:
    organization = await session.get_one(Organization, user.organization_id)
    token = issue_access_token(
        runtime.settings,
        user_id=user.id,
        organization_id=user.organization_id,
        session_version=user.session_version or 0,
    )
    return SignedIn(token=token, user=user, organization=organization)


def _failure_keys(email: str, address: str) -> dict[str, str]:
    return {
        "pair": f"login:pair:{email}:{address}",
        "account": f"login:acct:{email}",
        "address": f"login:addr:{address}",
    }


async def refuse_while_throttled(runtime: Runtime, email: str, address: str) -> None:
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


async def count_failure(runtime: Runtime, email: str, address: str) -> None:
    for key in _failure_keys(email, address).values():
        await runtime.counters.hit(key, runtime.settings.login_failure_window_seconds)


async def login(runtime: Runtime, *, email: str, password: str, address: str) -> SignedIn:
    email = normalize_email(email)
    await refuse_while_throttled(runtime, email, address)
    async with runtime.db.system_session() as system:
        found = await system.scalar(select(User).where(User.email == email, User.is_active.is_(True)))
    if not await verify_password(found.password_hash if found else None, password) or found is None:
        await count_failure(runtime, email, address)
        raise NotAuthenticated(N_("The e-mail or password is not correct."))
    await runtime.counters.reset(_failure_keys(email, address)["pair"])
    async with runtime.db.session(found.organization_id) as session:
        user = await session.get_one(User, found.id)
        user.last_login_at = utcnow()
        signed_in = await sign_in(runtime, session, user)
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
