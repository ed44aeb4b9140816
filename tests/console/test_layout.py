"""The console's layout rules: pages use shared pieces from `components/`, never another page; the
hub's API addresses live in `paths.js` and its socket event names in `events.js`, which lists
exactly the events the hub declares."""

from __future__ import annotations

import re
from pathlib import Path

from hub.app import load_handlers_and_tasks
from hub.realtime import declared_socket_events

SRC = Path(__file__).resolve().parents[2] / "console" / "src"
SOURCES = [p for p in SRC.rglob("*.js*") if p.suffix in (".js", ".jsx")]


def test_no_page_imports_another_page() -> None:
    crossing = [
        f"{page.name}: {spec}"
        for page in (SRC / "pages").glob("*.jsx")
        for spec in re.findall(r'^import .* from "([^"]+)";$', page.read_text(), re.M)
        if spec.startswith("./")
    ]
    assert crossing == []


def test_api_addresses_and_event_names_are_written_once() -> None:
    load_handlers_and_tasks()
    names = set(declared_socket_events())
    found = []
    for source in SOURCES:
        if source.name in ("paths.js", "events.js"):
            continue
        text = source.read_text()
        found += [f"{source.relative_to(SRC)}: {m}" for m in re.findall(r'["`]/api/[^"`]*["`]', text)]
        found += [f"{source.relative_to(SRC)}: {m}" for m in re.findall(r'"(\w+)"', text) if m in names]
    assert found == []


def test_the_console_knows_every_declared_event() -> None:
    load_handlers_and_tasks()
    listed = dict(re.findall(r"^  (\w+): \"(\w+)\",$", (SRC / "events.js").read_text(), re.M))
    assert all(key == value for key, value in listed.items())
    assert set(listed) - {"resync", "markAsRead"} == set(declared_socket_events())
