"""Who is calling: bearer tokens checked on every request and on every socket connect."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import exists, select

from hub.errors import NotAuthenticated
from hub.i18n import N_
from hub.models import Organization, RevokedToken, User
from hub.runtime import Runtime, runtime_of
from hub.security import InvalidToken, decode_access_token


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    full_name: str
    role: str
    preferred_language: str | None
    organization_language: str
    token_id: str
    token_expires_at: datetime


async def authenticate_token(runtime: Runtime, token: str) -> CurrentUser:
    """The user behind a token, or InvalidToken when it is malformed, expired, revoked or orphaned."""
    claims = decode_access_token(runtime.settings, token)
    # Role and language are read fresh, so a role change takes effect on the next request.
    async with runtime.db.session(claims.organization_id) as session:
        row = (
            await session.execute(
                select(
                    User,
                    Organization.default_language,
                    exists().where(RevokedToken.jti == claims.jti),
                )
                .join(Organization, Organization.id == User.organization_id)
                .where(User.id == claims.user_id, User.is_active.is_(True))
            )
        ).first()
    if row is None:
        raise InvalidToken("unknown or inactive user")
    user, organization_language, revoked = row
    if revoked:
        raise InvalidToken("revoked")
    if user.session_version != claims.session_version:
        raise InvalidToken("the password changed since")
    return CurrentUser(
        id=user.id,
        organization_id=user.organization_id,
        email=user.email,
        full_name=user.full_name,
        role=user.role,
        preferred_language=user.preferred_language,
        organization_language=organization_language,
        token_id=claims.jti,
        token_expires_at=claims.expires_at,
    )


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class TokenAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(connection)
        if token is None:
            raise NotAuthenticated()
        try:
            user = await authenticate_token(runtime_of(connection), token)
        except InvalidToken:
            raise NotAuthenticated(N_("The access token is invalid, expired or revoked.")) from None
        return AuthenticationResult(user=user, auth=token)
