"""Browser tests of the web console: Playwright driving Debian's Chromium against a real hub.

Chromium is not downloaded by Playwright here; the test command uses /usr/bin/chromium. Without
it these tests skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD, Member, RunningHub

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "console"


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the console cannot be tested: {reason}")
    pytest.skip(reason)


def build_console() -> None:
    """The same build `python3 dev.py` makes, when the console's sources changed since the last."""
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    dev.ensure_console()


def missing_parts() -> str | None:
    """Why the console cannot be tested on this machine, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (python3 dev.py test installs it)"
    if not Path(CHROMIUM).exists():
        return f"Chromium is not at {CHROMIUM} (Debian: apt-get install chromium)"
    if shutil.which("npm") is None and not (ROOT / "console" / "dist" / "app.js").exists():
        return "the console is not built and npm is not on the PATH"
    return None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    problem = missing_parts()
    if problem:
        unavailable(problem)
    from playwright.async_api import async_playwright

    build_console()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        await chromium.close()


@dataclass
class Console:
    """One person's browser: a context of its own, so two people never share storage."""

    hub: RunningHub
    context: Any
    page: Any
    errors: list[str] = field(default_factory=list)

    async def goto(self, path: str) -> None:
        await self.page.goto(self.hub.url + path)

    async def screenshot(self, name: str) -> Path:
        """Saved under test-artifacts/console for people to look at; full pages, after fonts settle."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        language = await self.page.evaluate("document.documentElement.lang")
        path = ARTIFACTS / f"{name}-{language}.png"
        await self.page.wait_for_timeout(150)
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    async def close(self) -> None:
        await self.context.close()


async def open_console(browser: Any, hub: RunningHub, *, language: str = "en") -> Console:
    context = await browser.new_context(
        locale=language, viewport={"width": 1440, "height": 900}, extra_http_headers={}
    )
    page = await context.new_page()
    page.set_default_timeout(15_000)
    console = Console(hub=hub, context=context, page=page)
    page.on("pageerror", lambda error: console.errors.append(str(error)))
    return console


async def sign_in(browser: Any, hub: RunningHub, member: Member, *, language: str = "en") -> Console:
    """Log in through the login page, as the person would."""
    console = await open_console(browser, hub, language=language)
    await console.goto("/login")
    await console.page.fill("input[name=email]", member.email)
    await console.page.fill("input[name=password]", PASSWORD)
    await console.page.click("button[type=submit]")
    await console.page.wait_for_selector(".shell")
    return console


@pytest.fixture
async def people(browser: Any) -> AsyncIterator[list[Console]]:
    """Consoles opened by a test, closed after it; page errors (a refusal of the page's Content
    Security Policy among them) fail the test."""
    opened: list[Console] = []
    yield opened
    errors = [error for console in opened for error in console.errors]
    for console in opened:
        await console.close()
    assert errors == [], errors
