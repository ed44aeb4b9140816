"""A local Stripe for billing tests: localstripe (a stateful server that speaks Stripe's API, with
the trials of `tests.helpers.stripe_server`), in a process of its own on a free port, empty at
start."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import stripe

ROOT = Path(__file__).resolve().parents[2]  # where `tests` is a package


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

    webhook_secret: str = "whsec_hub_tests"

    def settings(self) -> dict[str, str]:
        """The environment a hub needs to bill through this server."""
        return {
            "STRIPE_SECRET_KEY": self.secret_key,
            "STRIPE_API_BASE": self.url,
            "STRIPE_WEBHOOK_SECRET": self.webhook_secret,
            # The card form: localstripe serves a Stripe.js of its own that talks to it.
            "STRIPE_PUBLISHABLE_KEY": "pk_test_hub",
            "STRIPE_JS_URL": f"{self.url}/js.stripe.com/v3/",
        }

    async def send_webhooks_to(self, url: str) -> None:
        """Have this server sign and post its events to `url`, as Stripe does."""
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{self.url}/_config/webhooks/hub", data={"url": url, "secret": self.webhook_secret}
            )
        answer.raise_for_status()


def signed(payload: dict[str, Any], secret: str, *, at: int) -> tuple[bytes, str]:
    """An event's body and its `Stripe-Signature`, made as Stripe makes them (for events a test
    sends itself)."""
    body = json.dumps(payload).encode()
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={at},v1={mac}"


@contextlib.asynccontextmanager
async def local_stripe() -> AsyncIterator[LocalStripe]:
    port = _free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - started at once, not waited on
        [sys.executable, "-m", "tests.helpers.stripe_server", "--port", str(port), "--from-scratch"],
        cwd=ROOT,
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


@contextlib.asynccontextmanager
async def billed_hub(
    request: Any, tmp_path: Path, plans: Path | None = None
) -> AsyncIterator[tuple[Any, LocalStripe]]:
    """A hub billing through a local Stripe of its own, embedded (`request.param` sqlite) or on
    PostgreSQL + Redis with its worker and scheduler (postgres); with `plans`, those plans synced
    to it first."""
    from hub.billing.services import read_plans, sync_plans
    from tests.conftest import hub_of_kind

    async with local_stripe() as server, hub_of_kind(request, tmp_path, **server.settings()) as hub:
        if plans is not None:
            await sync_plans(hub.runtime, read_plans(plans))
        yield hub, server
