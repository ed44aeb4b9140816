"""Faults the tests inject: a TCP path to a service that can be cut and restored, and a private
Redis server that can be killed and started again, empty."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field

_ports = itertools.count()


def _free_port() -> int:
    """A port for a service that goes away and comes back on it. A port the system handed out
    would be free while the service is away, and another test process could take it then (its
    own Redis, say), so each xdist worker draws from its own range, below the ports the system
    hands out."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = 21000 + int(worker or 0) % 16 * 500
    for _ in range(500):
        port = base + next(_ports) % 500
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this worker's range")


@dataclass
class CuttableProxy:
    """Forwards a local port to a service. `cut()` drops every connection and refuses new ones
    (the service is gone, as when it stops); `restore()` lets connections through again."""

    target_host: str
    target_port: int
    port: int = field(default_factory=_free_port)
    _server: asyncio.Server | None = None
    _links: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def _link(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            client_writer.close()
            return
        self._links |= {client_writer, upstream_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while chunk := await reader.read(65536):
                    writer.write(chunk)
                    await writer.drain()
            writer.close()

        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))
        self._links -= {client_writer, upstream_writer}

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._links):
            transport = writer.transport
            transport.abort()
        self._links.clear()

    async def restore(self) -> None:
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        await self.cut()


@dataclass
class PrivateRedis:
    """A Redis server of the test's own on a free port, which keeps nothing on disk."""

    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.process = subprocess.Popen(  # noqa: ASYNC220 - started at once, not waited on
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            await asyncio.sleep(0.05)
        raise RuntimeError("the private Redis did not start")

    async def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)
        self.process = None
