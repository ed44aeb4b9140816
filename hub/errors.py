"""Errors the API answers with: JSON, a status code, a message in the caller's language, the fields."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy.exc
import structlog
from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from hub.i18n import N_, choose_language, translate

log = structlog.get_logger(__name__)


class HubError(Exception):
    """A refusal the caller should understand. `message` is a catalog id formatted with `params`."""

    status_code = 400
    default_message = N_("The request is not valid.")

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        **params: object,
    ) -> None:
        self.message = message or self.default_message
        self.field = field
        self.params = params
        self.headers = headers or {}
        self.extra = extra or {}
        if status_code is not None:
            self.status_code = status_code
        super().__init__(self.message)


class InvalidInput(HubError):
    status_code = 400


class NotAuthenticated(HubError):
    status_code = 401
    default_message = N_("Authentication is required.")


class Forbidden(HubError):
    status_code = 403
    default_message = N_("You do not have permission to do this.")


class NotFound(HubError):
    status_code = 404
    default_message = N_("Not found.")


class PaymentRequired(HubError):
    """The organization's plan does not allow this (billing's limits and modules)."""

    status_code = 402
    default_message = N_("Your plan does not allow this.")


class Conflict(HubError):
    status_code = 409
    default_message = N_("This conflicts with the current state.")


class RequestTimeout(HubError):
    status_code = 408
    default_message = N_("The request did not arrive in time.")


class TooManyRequests(HubError):
    status_code = 429
    default_message = N_("Too many requests. Try again later.")


class Busy(HubError):
    status_code = 503
    default_message = N_("The hub is busy. Try again shortly.")
    reason = "busy"  # what was past its bound (hub.throttle.Gate)


_STATUS_MESSAGES = {
    400: HubError.default_message,
    401: NotAuthenticated.default_message,
    403: Forbidden.default_message,
    402: PaymentRequired.default_message,
    404: NotFound.default_message,
    405: N_("This method is not allowed here."),
    408: RequestTimeout.default_message,
    409: Conflict.default_message,
    413: N_("The request is too large."),
    415: N_("This media type is not supported."),
    429: TooManyRequests.default_message,
    500: N_("Something went wrong on our side. Please try again."),
    503: N_("The service is not available right now."),
}


def request_language(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    user = connection.scope.get("user")
    return choose_language(
        preferred=getattr(user, "preferred_language", None),
        accept_language=connection.headers.get("accept-language"),
        organization_default=getattr(user, "organization_language", None),
    )


def error_body(
    language: str,
    status_code: int,
    message: str,
    errors: list[dict[str, str]] | None = None,
    **params: object,
) -> dict[str, Any]:
    body: dict[str, Any] = {"status_code": status_code, "detail": translate(language, message, **params)}
    if errors:
        body["errors"] = errors
    return body


def _json(body: dict[str, Any], status_code: int, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(body, status_code=status_code, media_type=MediaType.JSON, headers=headers)


def hub_error_handler(request: Request[Any, Any, Any], error: HubError) -> Response[Any]:
    language = request_language(request)
    errors = None
    if error.field:
        errors = [{"field": error.field, "message": translate(language, error.message, **error.params)}]
    body = error_body(language, error.status_code, error.message, errors, **error.params)
    body.update(error.extra)
    return _json(body, error.status_code, error.headers)


# msgspec's own validation messages, turned into catalog messages with the field they name.
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Object missing required field `(?P<field>[^`]+)`"), N_("This field is required.")),
    (re.compile(r"Object contains unknown field `(?P<field>[^`]+)`"), N_("This field is not accepted.")),
    (
        re.compile(r"Expected `str` of length <= (?P<limit>\d+)"),
        N_("Must be at most {limit} characters long."),
    ),
    (
        re.compile(r"Expected `str` of length >= (?P<limit>\d+)"),
        N_("Must be at least {limit} characters long."),
    ),
    (re.compile(r"Expected `(?:int|float)` (?:<=|<) (?P<limit>[\d.]+)"), N_("Must be at most {limit}.")),
    (re.compile(r"Expected `(?:int|float)` (?:>=|>) (?P<limit>[\d.]+)"), N_("Must be at least {limit}.")),
    (re.compile(r"Expected `array` of length <= (?P<limit>\d+)"), N_("Must have at most {limit} items.")),
    (re.compile(r"Expected `str` matching regex"), N_("The format is not valid.")),
    (re.compile(r"Invalid enum value"), N_("This is not one of the allowed values.")),
    (re.compile(r"Invalid UUID"), N_("This is not a valid identifier.")),
    (re.compile(r"Invalid (?:RFC3339 encoded )?datetime"), N_("This is not a valid date and time.")),
    (re.compile(r"Expected `(?P<expected>[a-z]+)`"), N_("This value has the wrong type.")),
]
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`")
_MALFORMED = N_("The request body is not valid JSON.")


def _field_path(path: str) -> str:
    return re.sub(r"\[(\d+)\]", r".\1", path).lstrip(".")


def _describe(language: str, raw: str, key: str | None) -> dict[str, str]:
    if key == "data":
        key = None  # Litestar's name for the whole body
    at = _PATH.search(raw)
    field = _field_path(at.group("path")) if at else (key or "")
    for pattern, message in _RULES:
        match = pattern.search(raw)
        if match:
            groups = match.groupdict()
            if groups.get("field"):
                field = ".".join(part for part in (field, groups["field"]) if part)
            params = {name: value for name, value in groups.items() if name != "field"}
            return {"field": field or "body", "message": translate(language, message, **params)}
    return {"field": field or "body", "message": translate(language, HubError.default_message)}


def _malformed(language: str) -> Response[Any]:
    errors = [{"field": "body", "message": translate(language, _MALFORMED)}]
    return _json(error_body(language, 400, _MALFORMED, errors), 400)


def validation_error_handler(request: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    language = request_language(request)
    extras = error.extra if isinstance(error.extra, list) else []
    errors = [
        _describe(language, str(item.get("message", "")), item.get("key"))
        if isinstance(item, dict)
        else _describe(language, str(item), None)
        for item in extras
    ]
    if not errors:
        if _is_malformed(str(error.detail)):
            return _malformed(language)
        errors.append(_describe(language, str(error.detail), None))
    return _json(error_body(language, 400, HubError.default_message, errors), 400)


def _is_malformed(detail: str) -> bool:
    return any(word in detail for word in ("Malformed", "malformed", "JSON", "truncated", "decode"))


def http_error_handler(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    language = request_language(request)
    status = error.status_code
    if status == 400 and _is_malformed(str(error.detail)):
        return _malformed(language)
    message = _STATUS_MESSAGES.get(
        status, HubError.default_message if status < 500 else _STATUS_MESSAGES[500]
    )
    return _json(error_body(language, status, message), status, error.headers)


# A database (or another service the request needs) that cannot be reached: the caller is told to
# come back, as a channel does on 503, and nothing of the request was kept.
OUTAGE_RETRY_SECONDS = 5


def is_outage(error: BaseException) -> bool:
    """Whether an error means a service could not be reached, not that the request was wrong."""
    if isinstance(error, ConnectionError | sqlalchemy.exc.TimeoutError | TimeoutError):
        return True
    if isinstance(error, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
        return True
    cause = error.__cause__
    return cause is not None and cause is not error and is_outage(cause)


def service_error_handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    if not is_outage(error):
        return internal_error_handler(request, error)
    log.warning(
        "a service the request needs is unavailable", path=request.url.path, error=type(error).__name__
    )
    return _json(
        error_body(request_language(request), 503, _STATUS_MESSAGES[503]),
        503,
        {"Retry-After": str(OUTAGE_RETRY_SECONDS)},
    )


def internal_error_handler(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    log.exception("unhandled error", path=request.url.path, exc_info=error)
    return _json(error_body(request_language(request), 500, _STATUS_MESSAGES[500]), 500)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HubError: hub_error_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    sqlalchemy.exc.DBAPIError: service_error_handler,
    sqlalchemy.exc.TimeoutError: service_error_handler,
    ConnectionError: service_error_handler,
    TimeoutError: service_error_handler,
    Exception: internal_error_handler,
}
