"""Secrets an organization gives the hub (its own AI server's key), kept sealed in the database:
encrypted and authenticated (Fernet) with a key derived from `HUB_SECRET_KEY`, so a copy of the
database alone reveals none of them. Changing `HUB_SECRET_KEY` leaves them unreadable: each must
then be given again."""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.config import Settings


@functools.cache
def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"hub sealed secrets").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(settings: Settings, secret: str) -> str:
    return _fernet(settings.secret_key).encrypt(secret.encode()).decode()


def unseal(settings: Settings, sealed: str) -> str | None:
    """The secret; None when it cannot be read (sealed under another `HUB_SECRET_KEY`, or altered)."""
    try:
        return _fernet(settings.secret_key).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None
