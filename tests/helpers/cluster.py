"""Scaled mode as it runs in production, on this machine: HAProxy (Debian's package) in front of
web processes (`hub serve`) with cookie-sticky sessions, plus a `hub worker` and a `hub
scheduler`, all on PostgreSQL and Redis. Used by the scale-out test and bench."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import socketio

ROOT = Path(__file__).resolve().parents[2]
HUB = [sys.executable, "-m", "hub.cli"]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
STICKY_COOKIE = "HUBSRV"


def haproxy_config(port: int, web_ports: list[int]) -> str:
    """Round robin over the web processes; a client keeps the one its first answer named in the
    cookie (Socket.IO's long-polling needs every request of a session at the same process). A
    process that stops answering its health check is taken out within a second, and a client
    whose process is gone is sent to another (redispatch)."""
    servers = "\n".join(
        f"    server web{i} 127.0.0.1:{web_port} check cookie web{i}" for i, web_port in enumerate(web_ports)
    )
    return f"""global
    maxconn 8000

defaults
    mode http
    option redispatch
    retries 3
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h

frontend hub
    bind 127.0.0.1:{port}
    option forwardfor
    default_backend webs

backend webs
    balance roundrobin
    cookie {STICKY_COOKIE} insert indirect nocache
    option httpchk GET /health
    default-server inter 300ms fall 2 rise 1
{servers}
"""


def haproxy_available() -> bool:
    return Path(HAPROXY).exists()


class Cluster:
    """Start with `await cluster.start()`; `url` is the balancer's. Quacks like a RunningHub for
    the helpers that only need `url` and `client()`."""

    def __init__(
        self, environment: dict[str, str], *, port: int, web_ports: list[int], workdir: Path
    ) -> None:
        self.environment = environment
        self.port = port
        self.web_ports = web_ports
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def client(self, token: str | None = None, language: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if language:
            headers["Accept-Language"] = language
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    def _start(self, name: str, command: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT
        )

    def log_of(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    async def start(self) -> None:
        migrated = await asyncio.to_thread(
            subprocess.run, [*HUB, "migrate"], cwd=ROOT, env=self.environment, capture_output=True, text=True
        )
        assert migrated.returncode == 0, migrated.stderr
        for i, web_port in enumerate(self.web_ports):
            self._start(f"web{i}", [*HUB, "serve", "--host", "127.0.0.1", "--port", str(web_port)])
        self._start("worker", [*HUB, "worker"])
        self._start("scheduler", [*HUB, "scheduler"])
        for i, web_port in enumerate(self.web_ports):
            await self._until_healthy(f"http://127.0.0.1:{web_port}", f"web{i}")
        config = self.workdir / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, self.web_ports))
        self._start("haproxy", [HAPROXY, "-db", "-f", str(config)])
        await self._until_healthy(self.url, "haproxy")

    async def _until_healthy(self, url: str, name: str, within: float = 60) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                process = self.processes[name]
                if process.poll() is not None:
                    raise AssertionError(f"{name} ended early:\n{self.log_of(name)[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/health")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{name} never answered:\n{self.log_of(name)[-3000:]}")

    def kill(self, name: str) -> None:
        """Gone at once, as a crashed machine is: no shutdown, nothing let go."""
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait()

    async def stop(self) -> None:
        # The balancer first: the web processes then have no open connections to wait for.
        for name in sorted(self.processes, key=lambda name: name != "haproxy"):
            process = self.processes[name]
            if process.poll() is None:
                process.terminate()
            if name == "haproxy":
                await asyncio.to_thread(process.wait, 10)
        for process in self.processes.values():
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                process.kill()


class BalancedSocket:
    """A Socket.IO client through the balancer, keeping its cookies (the sticky one among them)
    and reconnecting by itself, recording every `newMessage` it hears by message id."""

    def __init__(self, url: str, token: str, transport: str) -> None:
        self.url, self.token, self.transport = url, token, transport
        self.http: aiohttp.ClientSession | None = None
        self.client: socketio.AsyncClient | None = None
        self.messages: dict[str, float] = {}  # message id -> when it arrived (monotonic)
        self.disconnects = 0

    async def connect(self) -> None:
        # Cookies from an address (127.0.0.1) are refused by aiohttp's default jar.
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.client = socketio.AsyncClient(
            http_session=self.http, reconnection_delay=0.2, reconnection_delay_max=1, randomization_factor=0.2
        )

        @self.client.on("newMessage")
        async def new_message(data: dict[str, Any]) -> None:
            self.messages.setdefault(data["message"]["id"], time.monotonic())

        @self.client.on("disconnect")
        async def disconnected(*_reason: Any) -> None:
            self.disconnects += 1

        await self.client.connect(
            self.url, auth={"token": self.token}, transports=[self.transport], wait_timeout=10
        )

    @property
    def process(self) -> str | None:
        """The web process the balancer sends this client to (from its sticky cookie)."""
        assert self.http is not None
        for cookie in self.http.cookie_jar:
            if cookie.key == STICKY_COOKIE:
                return cookie.value
        return None

    async def close(self) -> None:
        # A long-polling client's disconnect waits for its poll to come back: not worth waiting for.
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.disconnect(), 1)
        if self.http is not None:
            await self.http.close()


def environment_for(base: dict[str, str], **extra: str) -> dict[str, str]:
    return {**base, **extra, "PYTHONUNBUFFERED": "1", "PATH": os.environ.get("PATH", "")}
