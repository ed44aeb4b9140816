"""Scale-out behind a real load balancer: one web process against two, in the same run.

    .venv/bin/python bench/scale_out.py [--rates 100,200,300] [--seconds 5]

HAProxy (Debian's package, which `python3 dev.py test` installs) in front of `hub serve`
processes with cookie-sticky sessions, plus a `hub worker` and a `hub scheduler`, on PostgreSQL (a
fresh database each time) and Redis: the deployment the README describes, on this machine. The
load is bench/inbound_to_agent.py's (200 sockets, 20 managers and 180 agents, connected through
the balancer; posts through the balancer at a constant rate; each message due at the managers
and at its conversation's agent), run against one web process and then against two. "CPU" is
the CPU time per message of all the hub's processes together (web, worker, scheduler), not
PostgreSQL's, Redis's or HAProxy's. Prints both and the ratio (two against one).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.helpers

from harness import fresh_database, organization_with_channel, people, run
from inbound_to_agent import AGENTS, MANAGERS, load_elsewhere, print_table

from hub.config import Settings
from hub.runtime import Runtime
from tests.helpers.cluster import Cluster, environment_for, haproxy_available


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_of(pids: list[int]) -> float:
    """CPU seconds these processes used so far (user and system), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def cluster_target(cluster: Cluster, settings: Settings) -> dict[str, Any]:
    """An organization with its channel, made through the balancer, and 200 people."""
    async with httpx.AsyncClient(base_url=cluster.url, timeout=60) as client:
        registered, admin, channel = await organization_with_channel(client)
        await client.patch(
            "/api/inbox/settings", headers=admin, json={"auto_assign": True, "agent_cap": 1000}
        )
    runtime = Runtime.build(settings)
    try:
        tokens = await people(
            runtime, uuid.UUID(registered["organization"]["id"]), [("manager", MANAGERS), ("agent", AGENTS)]
        )
    finally:
        await runtime.close()
    return {
        "url": cluster.url,
        "sockets": [{"token": token} for token in tokens],
        "post_url": channel["inbound_url"],
        "secret": channel["secret"],
    }


async def measure(webs: int, rates: list[int], seconds: float) -> dict[int, dict[str, float]]:
    async with fresh_database() as database:
        port = free_port()
        workdir = Path(tempfile.mkdtemp(prefix="hub-scale-"))
        environ = {
            "DATABASE_URL": database,
            "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "HUB_DATA_DIR": str(workdir / "data"),
            "HUB_SECRET_KEY": secrets.token_urlsafe(40),
            "HUB_TASK_QUEUE": f"hubbench{secrets.token_hex(3)}",
            "HUB_SOCKET_MAX_QUEUED": str(10**6),  # as in bench/inbound_to_agent.py
            "HUB_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "HUB_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "HUB_OUTBOUND_ALLOW": "127.0.0.0/8",
            "HUB_ALLOW_SUPERUSER": "1",  # the server's own login, as bench/harness.py explains
            "HUB_API_RATE_LIMIT": str(10**9),
            "HUB_LOG_LEVEL": "WARNING",
            "HUB_LOG_JSON": "true",
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "DATABASE_", "REDIS_"))}
        cluster = Cluster(
            environment_for(base, **environ),
            port=port,
            web_ports=[free_port() for _ in range(webs)],
            workdir=workdir,
        )
        try:
            await cluster.start()
            settings = Settings.from_env(environ, read_dotenv=False)
            target = await cluster_target(cluster, settings)
            pids = [process.pid for name, process in cluster.processes.items() if name != "haproxy"]
            return await load_elsewhere(target, rates, seconds, cpu=lambda: cpu_of(pids))
        finally:
            await cluster.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="100,200,300")
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    if not haproxy_available():
        sys.exit("HAProxy is not installed: `apt-get install haproxy` (python3 dev.py test does it)")
    rates = [int(r) for r in args.rates.split(",")]
    one = await measure(1, rates, args.seconds)
    two = await measure(2, rates, args.seconds)
    print(
        f"\nbehind HAProxy, PostgreSQL + Redis: {MANAGERS} managers + {AGENTS} agents through the balancer, "
        f"{MANAGERS + 1} deliveries per message; two web processes against one"
    )
    print_table(rates, [("2 webs", two), ("1 web", one)])


if __name__ == "__main__":
    run(main())
