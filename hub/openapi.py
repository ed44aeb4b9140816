"""The OpenAPI document says what each operation can answer, errors included.

Litestar describes the successful answers; this adds, to every operation, the error answers it
can give with the hub's real error body (`status_code`, `detail`, `errors[{field, message}]`),
drops the bearer requirement where an operation takes none, and describes the posts that are
signed instead of authenticated (their `X-Hub-Signature` header and raw JSON bodies).

What an operation can answer follows from what it is: every one can be refused for its Host,
its input, the rate limit or an unavailable service (400, 429, 503); one behind the token can
be 401, one behind a guard 403, one that names an object 404, a write 409 and 413. A handler
adds what only it gives through its `opt`: `errors=(408, 415)`, and for a signed post
`signed_body=SomeStruct`.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import JsonRenderPlugin, ScalarRenderPlugin
from litestar.routes import HTTPRoute

SIGNATURE_HEADER = "X-Hub-Signature"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
UNMETERED = ("/health", "/schema")

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status_code", "detail"],
    "properties": {
        "status_code": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong, in the caller's language"},
        "errors": {
            "type": "array",
            "description": "One entry per offending field",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

MEANINGS = {
    400: "The request is not valid (its Host, its parameters or its body); `errors` names the fields",
    401: "No valid access token (or, for a signed post, no valid signature)",
    402: "The organization's plan does not allow it (a limit reached, a module not in the plan, or a "
    "payment due); `limit`, `value` and `plan` say which and what lifts it",
    403: "The role may not do this, or the module is switched off",
    404: "There is no such object in the caller's organization",
    408: "The body did not arrive in time",
    409: "This conflicts with the current state",
    413: "The request or the file is too large",
    415: "The file's type is not one the hub takes",
    429: "Too many requests; `Retry-After` says when to try again",
    503: "The hub is busy or a service it needs is down; `Retry-After` says when to try again",
}


def _operations(app: Litestar) -> Iterator[tuple[str, str, HTTPRouteHandler]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if method != "HEAD":
                    yield route.path_format, method.lower(), handler


def error_codes(path: str, method: str, handler: HTTPRouteHandler) -> set[int]:
    """The error answers one operation can give."""
    anonymous = bool(handler.opt.get("exclude_from_auth"))
    codes = {400, 503} if path.startswith(UNMETERED) else {400, 429, 503}
    if not anonymous:
        codes.add(401)
    guards = handler.resolve_guards()
    if guards:
        codes.add(403)
    if any(getattr(guard, "plan_gated", False) for guard in guards):
        codes.add(402)
    if "{" in path:
        codes.add(404)
    if method.upper() in WRITES:
        codes |= {409, 413} if not anonymous else {413}
    codes |= set(handler.opt.get("errors", ()))
    return codes


def _response(code: int) -> dict[str, Any]:
    headers = {}
    if code in (429, 503):
        headers["Retry-After"] = {"description": "Seconds to wait", "schema": {"type": "integer"}}
    return {
        "description": MEANINGS.get(code, HTTPStatus(code).phrase),
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _signed(operation: dict[str, Any], body: type, components: dict[str, Any]) -> None:
    (schema,), found = msgspec.json.schema_components([body], ref_template="#/components/schemas/{name}")
    components.update(found)
    operation["requestBody"] = {
        "required": True,
        "description": "Raw JSON, signed with the channel's secret",
        "content": {"application/json": {"schema": schema}},
    }
    operation.setdefault("parameters", []).append(
        {
            "name": SIGNATURE_HEADER,
            "in": "header",
            "required": True,
            "description": 't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" with the secret>',
            "schema": {"type": "string"},
        }
    )


def document(app: Litestar, schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers, the signed posts and the true security to the generated document."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for path, method, handler in _operations(app):
        operation = schema.get("paths", {}).get(path, {}).get(method)
        if operation is None:
            continue  # not in the document (the console's pages)
        if handler.opt.get("exclude_from_auth"):
            operation["security"] = []
        body = handler.opt.get("signed_body")
        if body is not None:
            _signed(operation, body, components)
        responses = operation.setdefault("responses", {})
        for code in sorted(error_codes(path, method, handler)):
            if str(code) in responses and code not in (400,):
                continue  # the handler describes it itself (health's 503, say)
            responses[str(code)] = _response(code)
    return schema


def documented(request: Request[Any, Any, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The generated document with the error answers added, once (Litestar keeps the one dict)."""
    if "Error" not in schema.get("components", {}).get("schemas", {}):
        document(request.app, schema)
    return schema


class DocumentedJson(JsonRenderPlugin):
    """`/schema/openapi.json`, documented."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, documented(request, openapi_schema))


class DocumentedScalar(ScalarRenderPlugin):
    """The reading page at `/schema`, over the same document."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, documented(request, openapi_schema))


RENDER_PLUGINS = [DocumentedScalar(), DocumentedJson()]
