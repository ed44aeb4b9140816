"""Passwords, access tokens and one-time tokens."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.config import PASSWORD_MEMORY_KIB, PASSWORD_TIME_COST, Settings
from hub.db import utcnow
from hub.i18n import N_


@functools.cache
def _hasher_for(time_cost: int, memory_kib: int) -> tuple[PasswordHasher, str]:
    """The hasher for a cost, and a hash made with it: verifying against that hash keeps the
    timing of "no such account" equal to "wrong password"."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    return hasher, hasher.hash(secrets.token_urlsafe(16))


def _hasher() -> tuple[PasswordHasher, str]:
    from hub.runtime import current

    try:
        settings = current().settings
    except RuntimeError:  # no hub running in this process (a script): the default cost
        return _hasher_for(PASSWORD_TIME_COST, PASSWORD_MEMORY_KIB)
    return _hasher_for(settings.password_time_cost, settings.password_memory_kib)


_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "12345678",
        "iloveyou",
        "admin12345",
        "letmein123",
        "welcome123",
        "qwerty123",
        "abc123456",
        "1q2w3e4r5t",
        "passw0rd",
    }
)
PASSWORD_MIN_LENGTH = 10


def password_weakness(password: str, *, email: str = "", full_name: str = "") -> str | None:
    """The reason a password is too weak (a catalog message id), or None when it is acceptable."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return N_("The password must be at least 10 characters long.")
    lowered = password.lower()
    if lowered in _COMMON_PASSWORDS or len(set(password)) < 4:
        return N_("The password is too easy to guess.")
    if password.isdigit():
        return N_("The password must not be only digits.")
    local = email.split("@", 1)[0].lower()
    if (local and len(local) >= 4 and local in lowered) or (full_name and full_name.lower() == lowered):
        return N_("The password must not contain your name or e-mail.")
    return None


async def hash_password(password: str) -> str:
    hasher, _ = _hasher()
    return await asyncio.to_thread(hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    hasher, dummy = _hasher()

    def check() -> bool:
        try:
            return hasher.verify(password_hash or dummy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    jti: str
    expires_at: datetime
    session_version: int


class InvalidToken(Exception):
    pass


_ALGORITHM = "HS256"
_AUDIENCE = "hub"


def issue_access_token(
    settings: Settings, *, user_id: uuid.UUID, organization_id: uuid.UUID, session_version: int
) -> AccessToken:
    now = utcnow()
    expires_at = now + timedelta(minutes=settings.access_token_minutes)
    jti = secrets.token_hex(16)
    claims = {
        "sub": str(user_id),
        "org": str(organization_id),
        "jti": jti,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "aud": _AUDIENCE,
        "ver": session_version,
    }
    token = jwt.encode(claims, settings.secret_key, algorithm=_ALGORITHM)
    return AccessToken(token=token, jti=jti, expires_at=expires_at.replace(microsecond=0))


def decode_access_token(settings: Settings, token: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["sub", "org", "jti", "exp", "aud"]},
        )
        return TokenClaims(
            user_id=uuid.UUID(claims["sub"]),
            organization_id=uuid.UUID(claims["org"]),
            jti=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], tz=utcnow().tzinfo),
            session_version=int(claims.get("ver", 0)),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise InvalidToken(str(error)) from error


def new_secret_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Stored form of a one-time token: the database never holds the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()
