"""Media files: checked by their bytes, kept under the data directory, served by expiring links.

The store is an interface so an S3-compatible one can replace the local directory later; the
`media` table keeps what is known of each file and which organization owns it.

A file arrives into the store's incoming area in chunks (`receive_stream`), so however large it
is, memory holds one chunk; its type is then judged from its bytes alone, and only one of
`CONTENT_TYPES` is ever stored or served. What a sender declares decides nothing but a choice
between two equally safe names for plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import shutil
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
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
MAX_MEDIA_BYTES = max(SIZE_LIMITS.values())
LINK_SECONDS = 3600
CHUNK = 256 * 1024

# Every type the hub stores and serves, with its kind; nothing else is ever written to `media`.
CONTENT_TYPES = {
    "image/jpeg": "image",
    "image/png": "image",
    "image/gif": "image",
    "image/webp": "image",
    "audio/wav": "audio",
    "audio/ogg": "audio",
    "audio/mpeg": "audio",
    "audio/amr": "audio",
    "audio/mp4": "audio",
    "video/mp4": "video",
    "video/3gpp": "video",
    "application/pdf": "document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "document",
    "application/vnd.oasis.opendocument.text": "document",
    "application/vnd.oasis.opendocument.spreadsheet": "document",
    "application/vnd.oasis.opendocument.presentation": "document",
    "application/zip": "document",
    "text/plain": "document",
    "text/csv": "document",
}
# What the console shows in the page (images, players); every other type is only downloaded.
INLINE_KINDS = ("image", "audio", "video")

# A ZIP is an office document when it holds that format's own part; which part decides the type.
_OFFICE_PARTS = (
    ("word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)
_OPEN_DOCUMENT_TYPES = frozenset(
    t for t in CONTENT_TYPES if t.startswith("application/vnd.oasis.opendocument.")
)


class MediaTooLarge(HubError):
    status_code = 413
    default_message = N_("The file is larger than {limit} MB allowed for this kind of media.")


class MediaNotSupported(HubError):
    status_code = 415
    default_message = N_("This media type is not supported.")


def _zip_type(path: Path) -> str | None:
    """The office format a ZIP file is, from its own entries; a plain ZIP otherwise."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist()[:10_000])
            if "mimetype" in names:
                declared_inside = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
                if declared_inside in _OPEN_DOCUMENT_TYPES:
                    return declared_inside
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, NotImplementedError):
        return None
    for part, content_type in _OFFICE_PARTS:
        if part in names:
            return content_type
    return "application/zip"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte letter cut at the end of the sample is still text.
        return error.start >= len(head) - 3
    return True


def detect(
    head: bytes, declared: str, *, path: Path | None = None, filename: str | None = None
) -> str | None:
    """The content type judged from a file's first bytes (and, for a ZIP, its entries), or None for
    anything the hub does not take. The result is always one of CONTENT_TYPES."""
    declared = declared.split(";", 1)[0].strip().lower()
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand.startswith(b"3g"):
            return "video/3gpp"
        return "video/mp4"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(path) if path is not None else None
    named_csv = (filename or "").lower().endswith(".csv")
    if declared in ("text/plain", "text/csv") and _looks_like_text(head):
        return "text/csv" if declared == "text/csv" or named_csv else "text/plain"
    return None


def kind_of(content_type: str) -> str | None:
    return CONTENT_TYPES.get(content_type)


def is_inline(content_type: str) -> bool:
    """Whether a type may be shown in the page rather than only downloaded."""
    return CONTENT_TYPES.get(content_type) in INLINE_KINDS


@dataclass(frozen=True, slots=True)
class StoredFile:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """A file received whole into the store's incoming area, not yet kept as media."""

    path: Path
    size: int
    sha256: str
    head: bytes

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class MediaStore(Protocol):
    async def keep(self, key: str, incoming: IncomingFile) -> StoredFile:
        """Keep an incoming file as the media file `key`; the incoming file stays its caller's."""

    async def read(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    def open(self, key: str) -> BinaryIO:
        """The file for reading bit by bit, so large files need not sit in memory whole."""

    def incoming_path(self) -> Path:
        """A new, unused path in the incoming area, on the same disk as the kept files."""


class LocalMediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("media key escapes the media directory")
        return path

    def incoming_path(self) -> Path:
        folder = self.root / ".incoming"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / uuid.uuid4().hex

    async def keep(self, key: str, incoming: IncomingFile) -> StoredFile:
        path = self._path(key)

        def link() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(incoming.path, path)  # a second name for the same bytes: nothing is copied
            except OSError:
                partial = path.with_suffix(".part")
                shutil.copyfile(incoming.path, partial)
                partial.replace(path)  # readers never see half a file

        await asyncio.to_thread(link)
        return StoredFile(key=key, size=incoming.size, sha256=incoming.sha256)

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")


def media_store(settings: Settings) -> MediaStore:
    return LocalMediaStore(settings.data_dir / "media")


async def receive_stream(
    settings: Settings, chunks: AsyncIterator[bytes], *, limit: int = MAX_MEDIA_BYTES, field: str = "size"
) -> IncomingFile:
    """Write a file to the incoming area as its chunks arrive; 413 (and nothing left behind) once
    it passes `limit`. The caller keeps it with `save_media` or throws it away with `discard`."""
    path = media_store(settings).incoming_path()
    digest = hashlib.sha256()
    head = bytearray()
    size = 0
    handle = await asyncio.to_thread(path.open, "wb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise MediaTooLarge(field=field, limit=limit // MB)
            digest.update(chunk)
            if len(head) < 4096:
                head += chunk[: 4096 - len(head)]
            await asyncio.to_thread(handle.write, chunk)
    except BaseException:
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise
    handle.close()
    return IncomingFile(path=path, size=size, sha256=digest.hexdigest(), head=bytes(head))


async def receive_bytes(settings: Settings, data: bytes, *, field: str = "size") -> IncomingFile:
    """Bytes already in memory (a WhatsApp download, a small inline file) into the incoming area."""

    async def one_chunk() -> AsyncIterator[bytes]:
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]

    return await receive_stream(settings, one_chunk(), field=field)


async def save_media(
    session: HubAsyncSession,
    settings: Settings,
    *,
    declared_type: str,
    filename: str | None,
    data: bytes | None = None,
    incoming: IncomingFile | None = None,
) -> Media:
    """Check and keep one file for the session's organization; 413 or 415 when it cannot be taken.
    Either `data`, or an `incoming` file that stays the caller's to discard once it is done."""
    if incoming is None:
        own = await receive_bytes(settings, data or b"")
        try:
            return await save_media(
                session, settings, declared_type=declared_type, filename=filename, incoming=own
            )
        finally:
            own.discard()
    content_type = await asyncio.to_thread(
        detect, incoming.head, declared_type, path=incoming.path, filename=filename
    )
    if content_type is None:
        raise MediaNotSupported(field="content_type")
    kind = CONTENT_TYPES[content_type]
    limit = SIZE_LIMITS[kind]
    if incoming.size > limit:
        raise MediaTooLarge(field="size", limit=limit // MB)
    media_id = new_id()
    key = f"{session.organization_id}/{media_id.hex[:2]}/{media_id.hex}"
    store = media_store(settings)
    stored = await store.keep(key, incoming)

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
