"""The socket events' contract: every event the hub sends is declared (a struct in its package's
`events.py`), goes through the one typed call with its audience, is described in the AsyncAPI
document, and has a contract test. Payloads are checked against their struct wherever a test reads
them (`tests/helpers/sockets.py`)."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import msgspec
import pytest

from hub.app import load_handlers_and_tasks
from hub.realtime import SocketEvent, declared_socket_events, push
from tests.conftest import RunningHub

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "channels", "crm", "inbox", "tickets", "campaigns")


def test_nothing_pushes_an_undeclared_event_by_name() -> None:
    """Only `hub.realtime` calls the untyped `push_after_commit`: everything else sends a declared
    event through `push`."""
    calls = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "hub" / "realtime.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "push_after_commit":
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls == []


def test_every_declared_event_is_in_its_package_events_module() -> None:
    load_handlers_and_tasks()  # what every hub process loads at start
    events = declared_socket_events()
    assert len(events) >= 26
    for name, cls in events.items():
        assert cls.__module__.split(".")[-1] in ("events", "realtime"), (name, cls.__module__)
        assert name[:1].islower(), name  # camelCase, as the seed names them
        assert name.isalnum(), name


async def test_an_undeclared_event_is_refused(hub: RunningHub) -> None:
    class Undeclared(SocketEvent, kw_only=True):
        name = "undeclared"
        value: int

    async with hub.runtime.db.system_session() as session:
        with pytest.raises(ValueError, match="not declared"):
            push(session, Undeclared(value=1), to=None)  # type: ignore[arg-type]


async def test_the_asyncapi_document_describes_every_event(hub: RunningHub) -> None:
    async with hub.client() as client:  # no token: it is public, like the OpenAPI document
        answer = await client.get("/schema/asyncapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["asyncapi"].startswith("2.")
    messages = document["components"]["messages"]
    schemas = document["components"]["schemas"]
    sent = {
        ref["$ref"].rsplit("/", 1)[-1] for ref in document["channels"]["/"]["subscribe"]["message"]["oneOf"]
    }
    assert sent == set(declared_socket_events())
    for name, cls in declared_socket_events().items():
        payload = messages[name]["payload"]
        schema = schemas[payload["$ref"].rsplit("/", 1)[-1]]
        encoded = {field.encode_name for field in msgspec.structs.fields(cls)}
        assert set(schema["properties"]) == encoded, name
        assert messages[name]["summary"]
    # What clients send is listed too.
    received = document["channels"]["/"]["publish"]["message"]["oneOf"]
    assert {"#/components/messages/client.markAsRead"} <= {ref["$ref"] for ref in received}


def test_every_declared_event_has_a_contract_test() -> None:
    """Each event is expected somewhere with `CapturedPushes.expect` (`tests/helpers/pushes.py`):
    the action that sends it, its exact recipients, its payload applied to fetched state."""
    load_handlers_and_tasks()
    expected = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "expect"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id.endswith("pushes")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                expected.add(node.args[0].value)
    missing = set(declared_socket_events()) - expected
    assert not missing, f"socket events without a contract test: {sorted(missing)}"


def test_payloads_are_camel_case_and_typed() -> None:
    from inbox.events import ConversationUnassigned

    chat = uuid.uuid4()
    assert msgspec.to_builtins(ConversationUnassigned(chat_id=chat)) == {"chatId": str(chat)}
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"chatId": "not an id"}, ConversationUnassigned)
