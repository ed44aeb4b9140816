"""What the kernel costs per request: an authenticated, tenant-scoped API call against a bare one.

    .venv/bin/python bench/authenticated_requests.py [--requests 3000] [--concurrency 20] [--postgres]

The hub answers `GET /api/users/me` (token check, user and revocation look-up, rate-limit count,
a tenant session and the user read). The baseline is a bare Litestar app answering a fixed JSON
object on the same uvicorn settings. Both run in this process, one after the other, with the same
client; the figures and their ratio are printed side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from litestar import Litestar, get

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import fresh_database, local_hub, serve

from hub.app import create_app
from hub.config import Settings


def load_in_child(
    url: str, path: str, headers: dict[str, str], requests: int, concurrency: int
) -> dict[str, float]:
    return asyncio.run(load(url, path, headers, requests, concurrency))


async def load_elsewhere(
    url: str, path: str, headers: dict[str, str], requests: int, concurrency: int
) -> dict[str, float]:
    """The client runs in its own process, so it does not share the server's event loop."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, load_in_child, url, path, headers, requests, concurrency
        )


async def load(
    url: str, path: str, headers: dict[str, str], requests: int, concurrency: int
) -> dict[str, float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        for _ in range(50):  # warm-up
            (await client.get(path)).raise_for_status()

        async def user() -> None:
            while not queue.empty():
                queue.get_nowait()
                started = time.perf_counter()
                response = await client.get(path)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": requests / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--postgres", action="store_true", help="PostgreSQL and Redis from TEST_DATABASE_URL/TEST_REDIS_URL"
    )
    args = parser.parse_args()

    environ = {
        "HUB_DATA_DIR": tempfile.mkdtemp(prefix="hub-bench-"),
        "HUB_SECRET_KEY": secrets.token_urlsafe(40),
        **local_hub(),
        "HUB_API_RATE_LIMIT": str(10**9),
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_TASK_QUEUE": f"hubbench{secrets.token_hex(3)}",
    }
    async with contextlib.AsyncExitStack() as stack:  # a fresh database, dropped at the end
        if args.postgres:
            environ["DATABASE_URL"] = await stack.enter_async_context(fresh_database())
            environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
            environ["HUB_MIGRATE_ON_START"] = "true"
        settings = Settings.from_env(environ, read_dotenv=False)

        server, task, url = await serve(create_app(settings))
        async with httpx.AsyncClient(base_url=url) as client:
            registered = await client.post(
                "/api/auth/register",
                json={
                    "organization_name": "Bench",
                    "full_name": "Bench Admin",
                    "email": f"bench-{secrets.token_hex(4)}@example.test",
                    "password": "a long bench passphrase",
                },
            )
            registered.raise_for_status()
        token = registered.json()["access_token"]
        hub = await load(
            url, "/api/users/me", {"Authorization": f"Bearer {token}"}, args.requests, args.concurrency
        )
        server.should_exit = True
        await task

        @get("/me", sync_to_thread=False)
        def bare() -> dict[str, str]:
            return {"id": "0", "email": "bench@example.test", "role": "admin"}

        server, task, url = await serve(Litestar([bare], logging_config=None))
        baseline = await load_elsewhere(url, "/me", {}, args.requests, args.concurrency)
        server.should_exit = True
        await task

        database = "postgresql+redis" if args.postgres else "sqlite (embedded)"
        print(f"{args.requests} requests, {args.concurrency} concurrent, {database}")
        print(f"{'':24}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
        print(f"{'hub GET /api/users/me':24}{hub['rps']:10.0f}{hub['p50_ms']:10.2f}{hub['p99_ms']:10.2f}")
        print(
            f"{'bare Litestar GET':24}{baseline['rps']:10.0f}{baseline['p50_ms']:10.2f}{baseline['p99_ms']:10.2f}"
        )
        print(
            f"{'ratio hub/bare':24}{hub['rps'] / baseline['rps']:10.2f}"
            f"{hub['p50_ms'] / baseline['p50_ms']:10.2f}{hub['p99_ms'] / baseline['p99_ms']:10.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
