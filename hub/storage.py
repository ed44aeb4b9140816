"""Media files: checked by their bytes, kept under the data directory, served by expiring links.

The store is an interface so an S3-compatible one can replace the local directory later; the
`media` table keeps what is known of each file and which organization owns it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from hub.config import Settings
from hub.db import HubAsyncSession, new_id
from hub.errors import HubError
from hub.i18n import N_
from hub.models import Media
from hub.schemas import MediaOut

MB = 1024 * 1024
# The limits WhatsApp itself applies, so what the hub accepts it can also send on.
SIZE_LIMITS = {"image": 5 * MB, "audio": 16 * MB, "video": 16 * MB, "document": 100 * MB}
LINK_SECONDS = 3600


class MediaTooLarge(HubError):
    status_code = 413
    default_message = N_("The file is larger than {limit} MB allowed for this kind of media.")


class MediaNotSupported(HubError):
    status_code = 415
    default_message = N_("This media type is not supported.")


def _zip_family(declared: str) -> bool:
    return declared.startswith("application/vnd.openxmlformats-officedocument.") or declared in (
        "application/zip",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
    )


def detect(data: bytes, declared: str) -> tuple[str, str] | None:
    """(kind, content type) judged from the first bytes, or None for anything we do not take."""
    head = data[:64]
    declared = declared.split(";", 1)[0].strip().lower()
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image", "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio", "audio/wav"
    if head.startswith(b"OggS"):
        return "audio", "audio/ogg"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio", "audio/mpeg"
    if head.startswith(b"#!AMR"):
        return "audio", "audio/amr"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio", "audio/mp4"
        if brand.startswith(b"3g"):
            return "video", "video/3gpp"
        return "video", "video/mp4"
    if head.startswith(b"%PDF-"):
        return "document", "application/pdf"
    if head.startswith(b"PK\x03\x04") and _zip_family(declared):
        return "document", declared
    if declared in ("text/plain", "text/csv") and _looks_like_text(data):
        return "document", declared
    return None


def _looks_like_text(data: bytes) -> bool:
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data[:4096]


@dataclass(frozen=True, slots=True)
class StoredFile:
    key: str
    size: int
    sha256: str


class MediaStore(Protocol):
    async def put(self, key: str, data: bytes) -> StoredFile: ...

    async def read(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    def open(self, key: str) -> BinaryIO:
        """The file for reading bit by bit, so large files need not sit in memory whole."""


class LocalMediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("media key escapes the media directory")
        return path

    async def put(self, key: str, data: bytes) -> StoredFile:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            partial.replace(path)  # readers never see half a file

        await asyncio.to_thread(write)
        return StoredFile(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")


def media_store(settings: Settings) -> MediaStore:
    return LocalMediaStore(settings.data_dir / "media")


async def save_media(
    session: HubAsyncSession, settings: Settings, *, data: bytes, declared_type: str, filename: str | None
) -> Media:
    """Check and keep one file for the session's organization; 413 or 415 when it cannot be taken."""
    detected = detect(data, declared_type)
    if detected is None:
        raise MediaNotSupported(field="content_type")
    kind, content_type = detected
    limit = SIZE_LIMITS[kind]
    if len(data) > limit:
        raise MediaTooLarge(field="size", limit=limit // MB)
    media_id = new_id()
    key = f"{session.organization_id}/{media_id.hex[:2]}/{media_id.hex}"
    store = media_store(settings)
    stored = await store.put(key, data)

    async def forget_file() -> None:
        await store.delete(key)

    session.on_rollback(forget_file)  # a file whose row is never committed is not kept
    media = Media(
        id=media_id,
        key=stored.key,
        kind=kind,
        content_type=content_type,
        size=stored.size,
        sha256=stored.sha256,
        filename=(filename or "")[:255] or None,
    )
    session.add(media)
    await session.flush()
    return media


def media_link(settings: Settings, base_url: str, media_id: uuid.UUID, *, seconds: int = LINK_SECONDS) -> str:
    expires = int(time.time()) + seconds
    return f"{base_url}/api/media/{media_id}?expires={expires}&signature={_link_signature(settings, media_id, expires)}"


def describe(settings: Settings, media: Media, base_url: str = "") -> MediaOut:
    """A media file as the API shows it, with an expiring link (relative unless given a base)."""
    return MediaOut(
        id=media.id,
        kind=media.kind,
        content_type=media.content_type,
        size=media.size,
        filename=media.filename,
        url=media_link(settings, base_url, media.id),
    )


def link_is_valid(settings: Settings, media_id: uuid.UUID, expires: int, signature: str) -> bool:
    if expires < time.time():
        return False
    return hmac.compare_digest(_link_signature(settings, media_id, expires), signature)


def _link_signature(settings: Settings, media_id: uuid.UUID, expires: int) -> str:
    return hmac.new(
        settings.secret_key.encode(), f"media:{media_id}:{expires}".encode(), hashlib.sha256
    ).hexdigest()


async def media_in_order(session: HubAsyncSession, media_ids: list[uuid.UUID]) -> list[Media]:
    """The organization's media files with these ids, in the order given; an id it does not hold
    (another organization's file looks like none) is a 400 on `attachments`."""
    from sqlalchemy import select

    from hub.errors import InvalidInput

    wanted = list(dict.fromkeys(media_ids))
    found = list(await session.scalars(select(Media).where(Media.id.in_(wanted)))) if wanted else []
    if len(found) != len(wanted):
        raise InvalidInput(N_("An attachment was not found; upload it first."), field="attachments")
    found.sort(key=lambda m: wanted.index(m.id))
    return found
