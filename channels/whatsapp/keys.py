"""Where a profile's WhatsApp keys live: what lets it reconnect without a new QR.

Embedded, a SQLite file per profile under the data directory. On PostgreSQL, the hub's own
database, in the schema `whatsapp` that `hub migrate` makes for the hub's login alone: a profile
whose process dies is taken up by another process, on any machine, with its keys. There all
profiles share the store, so each one's device is found by its own JID (kept in the profile once
paired); a profile that has none asks for a new device, never for the store's first one, which
belongs to some other profile and maybe to another organization.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from neonize.aioze.client import NewAClient
from neonize.proto.Neonize_pb2 import JID
from sqlalchemy import text
from sqlalchemy.engine import make_url

from hub.config import Settings
from hub.runtime import Runtime

SCHEMA = "whatsapp"


def device_of(jid: Any) -> dict[str, Any]:
    """What a profile keeps of its device's JID once paired (never a key)."""
    return {"user": jid.User, "agent": jid.RawAgent, "device": jid.Device, "server": jid.Server}


def jid_of(device: dict[str, Any]) -> JID:
    return JID(
        User=device["user"],
        RawAgent=device["agent"],
        Device=device["device"],
        Integrator=0,
        Server=device["server"],
        IsEmpty=False,
    )


def jid_text(device: dict[str, Any]) -> str:
    """The JID as the store writes it: user[.agent][:device]@server."""
    user = device["user"]
    if device["agent"]:
        user = f"{user}.{device['agent']}:{device['device']}"
    elif device["device"]:
        user = f"{user}:{device['device']}"
    return f"{user}@{device['server']}"


def store_url(settings: Settings) -> str:
    """The PostgreSQL address neonize's store opens (its Go driver's form), in the schema above.
    It holds the login's password: it is given to neonize and nowhere else."""
    if settings.whatsapp_store_url:
        return settings.whatsapp_store_url
    url = make_url(settings.database_url)
    credentials = quote(url.username or "", safe="")
    if url.password:
        credentials += ":" + quote(str(url.password), safe="")
    host = url.host or "localhost"
    port = url.port or 5432
    options = {"sslmode": str(url.query.get("sslmode", "disable")), "search_path": SCHEMA}
    return f"postgres://{credentials}@{host}:{port}/{url.database}?{urlencode(options)}"


class FileKeys:
    """One SQLite file per profile under the data directory (embedded)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def path(self, channel_id: uuid.UUID) -> Path:
        return self.runtime.settings.data_dir / "whatsapp" / f"{channel_id}.sqlite3"

    async def client_for(self, channel_id: uuid.UUID, config: dict[str, Any]) -> NewAClient:
        path = self.path(channel_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        return NewAClient(str(path), uuid=str(channel_id))

    async def has(self, channel_id: uuid.UUID, config: dict[str, Any]) -> bool:
        return self.path(channel_id).exists()

    async def forget(self, channel_id: uuid.UUID, config: dict[str, Any]) -> None:
        self.path(channel_id).unlink(missing_ok=True)


class DatabaseKeys:
    """The hub's PostgreSQL database, schema `whatsapp`, one device per profile (scaled)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.url = store_url(runtime.settings)

    async def client_for(self, channel_id: uuid.UUID, config: dict[str, Any]) -> NewAClient:
        device = config.get("device")
        if device and await self._stored(jid_text(device)):
            return NewAClient(self.url, jid=jid_of(device), uuid=str(channel_id))
        return NewAClient(self.url, uuid=str(channel_id), new_device=True)

    async def has(self, channel_id: uuid.UUID, config: dict[str, Any]) -> bool:
        device = config.get("device")
        return device is not None and await self._stored(jid_text(device))

    async def forget(self, channel_id: uuid.UUID, config: dict[str, Any]) -> None:
        """Delete the device; the store deletes everything else of it with it."""
        device = config.get("device")
        if not device:
            return
        # As the login itself, which owns the store's tables (the tenant roles have no part in them).
        async with self.runtime.db.engine.begin() as connection:
            if await connection.scalar(text("SELECT to_regclass('whatsapp.whatsmeow_device')")) is None:
                return
            await connection.execute(
                text("DELETE FROM whatsapp.whatsmeow_device WHERE jid = :jid"), {"jid": jid_text(device)}
            )

    async def _stored(self, jid: str) -> bool:
        async with self.runtime.db.engine.connect() as connection:
            if await connection.scalar(text("SELECT to_regclass('whatsapp.whatsmeow_device')")) is None:
                return False
            found = await connection.scalar(
                text("SELECT 1 FROM whatsapp.whatsmeow_device WHERE jid = :jid"), {"jid": jid}
            )
            return found is not None


def keys_of(runtime: Runtime) -> FileKeys | DatabaseKeys:
    return DatabaseKeys(runtime) if runtime.settings.is_postgres else FileKeys(runtime)
