"""The socket events as an AsyncAPI document, beside the OpenAPI one, so integrators can generate
clients: every declared `SocketEvent` with its payload's JSON schema, and the events clients send."""

from __future__ import annotations

import inspect
from typing import Any

import msgspec

from hub import __version__
from hub.realtime import declared_client_events, declared_socket_events


def document() -> dict[str, Any]:
    events = dict(sorted(declared_socket_events().items()))
    schemas, components = msgspec.json.schema_components(
        list(events.values()), ref_template="#/components/schemas/{name}"
    )
    messages: dict[str, Any] = {}
    for (name, cls), schema in zip(events.items(), schemas, strict=True):
        summary = (inspect.getdoc(cls) or name).split("\n\n")[0].replace("\n", " ")
        messages[name] = {"name": name, "title": name, "summary": summary, "payload": schema}
    sent = sorted(declared_client_events())
    for name in sent:
        messages[f"client.{name}"] = {"name": name, "title": name, "payload": {}}
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "Hub real-time events",
            "version": __version__,
            "description": (
                "Socket.IO on the hub's own port (path /socket.io). Connect with auth: {token: <access token>}; "
                "a missing, expired or revoked token is refused. Each event reaches only the people of the "
                "organization allowed to read what it is about."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "/": {
                "subscribe": {
                    "summary": "What the hub sends",
                    "message": {"oneOf": [{"$ref": f"#/components/messages/{n}"} for n in events]},
                },
                "publish": {
                    "summary": "What a client may send",
                    "message": {"oneOf": [{"$ref": f"#/components/messages/client.{n}"} for n in sent]},
                },
            }
        },
        "components": {"messages": messages, "schemas": components},
    }
