"""The web console in Chromium: how fast the inbox opens and how soon a customer's message shows.

    .venv/bin/python bench/console_live.py [--conversations 100] [--runs 10] [--messages 30]

An embedded hub (SQLite) holds `--conversations` conversations, each started by a signed post to
an API channel. Headless Chromium (/usr/bin/chromium, through Playwright) then:

- opens the inbox until its list shows its first page (50 conversations), in a new browser
  (nothing cached) and again with its files cached; the baseline, in the same browser, opens a
  page of the same origin and runs a few lines of plain JavaScript that fetch the same page from
  the API and draw it as plain <li>s;
- shows new messages: `--messages` customers write one after another, each timed from the post
  until its name is on the page; the baseline is a python-socketio client signed in as the same
  user, timed from the same post until its `newMessage` arrives.

Prints the medians and 95th percentiles of both, their ratios, and the size of the console's files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import socketio
from playwright.async_api import async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import local_hub, register, run, serve

from channels.api import signature
from hub.app import create_app
from hub.config import Settings

ROOT = Path(__file__).resolve().parents[1]
FIRST_PAGE = 50  # what the console's inbox asks for first; more comes as the list scrolls
BARE_LIST = """async ([token, limit]) => {
  const started = performance.now();
  const answer = await fetch(`/api/inbox/conversations?limit=${limit}`, {headers: {authorization: `Bearer ${token}`}});
  const page = await answer.json();
  const list = document.createElement("ul");
  for (const item of page.items) {
    const line = document.createElement("li");
    line.textContent = `${item.customer.name}: ${item.last_message_preview}`;
    list.append(line);
  }
  document.body.append(list);
  return performance.now() - started;
}"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def line(name: str, console: list[float], bare: list[float]) -> None:
    median_console, median_bare = statistics.median(console), statistics.median(bare)
    print(
        f"{name:<34} console p50 {median_console:7.1f} ms  p95 {percentile(console, 0.95):7.1f} ms"
        f" | bare p50 {median_bare:7.1f} ms  p95 {percentile(bare, 0.95):7.1f} ms"
        f" | ratio {median_console / median_bare:5.2f}"
    )


async def post(http: httpx.AsyncClient, channel: dict[str, Any], number: int, name: str) -> httpx.Response:
    body = json.dumps(
        {
            "external_id": f"m-{number}-{secrets.token_hex(3)}",
            "from": f"+9665{number:08d}",
            "name": name,
            "text": "hi",
        }
    ).encode()
    headers = {
        "content-type": "application/json",
        "X-Hub-Signature": signature(channel["secret"], body, int(time.time())),
    }
    return await http.post(channel["inbound_url"], content=body, headers=headers)


async def main(arguments: argparse.Namespace) -> None:
    settings = Settings.from_env(
        {"HUB_DATA_DIR": tempfile.mkdtemp(), "HUB_LOG_LEVEL": "WARNING", **local_hub()}, read_dotenv=False
    )
    server, task, url = await serve(create_app(settings))
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        admin = await register(http)
        token = admin["access_token"]
        http.headers["authorization"] = f"Bearer {token}"
        session = (await http.get("/api/auth/me")).json()
        channel = (
            await http.post(
                "/api/channels", json={"type": "api", "name": "Bench", "webhook_url": "http://127.0.0.1:9/x"}
            )
        ).json()
        for number in range(arguments.conversations):
            assert (await post(http, channel, number, f"Customer {number}")).status_code == 202

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium")
            signed_in = f"localStorage.setItem('hub.session', {json.dumps(json.dumps(session))})"

            async def open_inbox(context: Any) -> float:
                page = await context.new_page()
                started = time.perf_counter()
                await page.goto(f"{url}/inbox")
                await page.wait_for_function(
                    f"document.querySelectorAll('.conversation-item').length >= {FIRST_PAGE}", polling=1
                )
                elapsed = (time.perf_counter() - started) * 1000
                await page.close()
                return elapsed

            first, cached, bare = [], [], []
            for _ in range(arguments.runs):
                # The measuring scripts are strings the page's own policy would refuse to run.
                context = await browser.new_context(locale="en", bypass_csp=True)
                await context.add_init_script(signed_in)
                first.append(await open_inbox(context))
                cached.append(await open_inbox(context))
                page = await context.new_page()
                started = time.perf_counter()
                await page.goto(f"{url}/health")  # a page of the same origin, as the console's
                await page.evaluate(BARE_LIST, [token, FIRST_PAGE])
                bare.append((time.perf_counter() - started) * 1000)
                await context.close()

            # New messages, live: the page and a bare socket watch the same posts.
            context = await browser.new_context(locale="en", bypass_csp=True)
            await context.add_init_script(signed_in)
            page = await context.new_page()
            await page.goto(f"{url}/inbox")
            await page.wait_for_selector("[data-connected=yes]")
            arrived: dict[str, float] = {}
            sock = socketio.AsyncClient()
            sock.on(
                "newMessage",
                lambda data: arrived.setdefault(
                    data["conversation"]["customer"]["name"], time.perf_counter()
                ),
            )
            await sock.connect(url, auth={"token": token}, transports=["websocket"])
            shown, received = [], []
            for number in range(arguments.messages):
                name = f"Live {number} {secrets.token_hex(2)}"
                started = time.perf_counter()
                answer = await post(http, channel, 10_000_000 + number, name)
                assert answer.status_code == 202, answer.text
                await page.wait_for_function(
                    f"document.body.innerText.includes({json.dumps(name)})", polling=1
                )
                shown.append((time.perf_counter() - started) * 1000)
                while name not in arrived:  # noqa: ASYNC110 - the client's handler only records a time
                    await asyncio.sleep(0.001)
                received.append((arrived[name] - started) * 1000)
            await sock.disconnect()
            await context.close()
            await browser.close()

    server.should_exit = True
    await task
    dist = ROOT / "console" / "dist"
    print(
        f"{arguments.conversations} conversations, {arguments.runs} runs, {arguments.messages} live messages"
    )
    line("inbox open, first visit", first, bare)
    line("inbox open, files cached", cached, bare)
    line("customer's message on screen", shown, received)
    for name in ("app.js", "app.css"):
        size, packed = (dist / name).stat().st_size, (dist / f"{name}.gz").stat().st_size
        print(f"{name:<10} {size / 1024:6.1f} KB, {packed / 1024:5.1f} KB gzipped (served)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--messages", type=int, default=30)
    run(main(parser.parse_args()))
