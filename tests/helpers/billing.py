"""A local Stripe for billing tests: localstripe (a stateful server that speaks Stripe's API), in a
process of its own on a free port, empty at start."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import stripe


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalStripe:
    url: str
    secret_key: str = "sk_test_hub"

    def client(self) -> stripe.StripeClient:
        """A client of the test's own, to look at what the hub made."""
        return stripe.StripeClient(
            self.secret_key, base_addresses={"api": self.url}, http_client=stripe.HTTPXClient()
        )

    def settings(self) -> dict[str, str]:
        """The environment a hub needs to bill through this server."""
        return {"STRIPE_SECRET_KEY": self.secret_key, "STRIPE_API_BASE": self.url}


@contextlib.asynccontextmanager
async def local_stripe() -> AsyncIterator[LocalStripe]:
    port = _free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - started at once, not waited on
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError("localstripe did not start")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("localstripe did not answer")
        yield LocalStripe(url=f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait)
