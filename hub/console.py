"""The web console: its page shell at `/` and the console's paths, its built files and its messages.

The console is built from `console/` (npm packages, esbuild) into `console/dist`; `python3 dev.py
serve` builds it when its sources changed. Its words live in the same gettext catalogs as the
API's, and are served to the browser per language.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File

from hub.config import LANGUAGES, Settings
from hub.i18n import N_, choose_language, messages_of, supported, text_direction, translate
from hub.runtime import runtime_of

CONSOLE_DIR = Path(
    os.environ.get("HUB_CONSOLE_DIR") or Path(__file__).resolve().parent.parent / "console" / "dist"
)
LANGUAGE_COOKIE = "hub_language"

# Paths the console answers in the browser; e-mailed links open /reset-password and /accept-invitation.
PAGES = [
    "/",
    "/login",
    "/register",
    "/forgot-password",
    "/reset-password",
    "/accept-invitation",
    "/overview",
    "/inbox",
    "/inbox/{rest:path}",
    "/customers",
    "/customers/{rest:path}",
    "/pipeline",
    "/tickets",
    "/tickets/{rest:path}",
    "/campaigns",
    "/campaigns/{rest:path}",
    "/channels",
    "/channels/{rest:path}",
    "/team",
    "/settings",
    "/settings/{rest:path}",
    "/billing",
]
# The one page that loads a script from elsewhere: Stripe.js, for the card form.
BILLING_PAGE = "/billing"

# Only the hub's own script runs, and the page talks only to the hub: a message's text can never
# become code that reads the signed-in person's token.
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "media-src": "'self' blob:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def policy_text(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {sources}" for name, sources in directives.items())


CONTENT_SECURITY_POLICY = policy_text(POLICY)


def billing_policy(settings: Settings) -> str:
    """The billing page's policy: the console's, plus exactly what Stripe.js needs (its script,
    its frames and the 3-D Secure frame, Stripe's API)."""
    script = _origin(settings.stripe_js_url)
    api = _origin(settings.stripe_api_base or "https://api.stripe.com")
    return policy_text(
        {
            **POLICY,
            "script-src": f"{POLICY['script-src']} {script}",
            "connect-src": f"{POLICY['connect-src']} {api}",
            "frame-src": f"{script} https://hooks.stripe.com",
        }
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
}


def page_language(request: Request[Any, Any, Any]) -> str:
    return choose_language(
        preferred=request.cookies.get(LANGUAGE_COOKIE),
        accept_language=request.headers.get("accept-language"),
        organization_default=None,
    )


def build_stamp() -> int:
    """When the console was last built (0: never), so a rebuild shows without a restart."""
    try:
        return (CONSOLE_DIR / "app.js").stat().st_mtime_ns
    except FileNotFoundError:
        return 0


@cache
def asset_version(name: str, stamp: int) -> str:
    """A short digest of a built file, so browsers cache it until the next build."""
    path = CONSOLE_DIR / name
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if stamp and path.exists() else "missing"


def shell(language: str, stamp: int) -> str:
    title = translate(language, N_("Hub"))
    if not stamp:
        body = "<main class='unbuilt'><p>{}</p></main>".format(
            html.escape(
                translate(
                    language, N_("The console has not been built. Run `python3 dev.py serve` to build it.")
                )
            )
        )
    else:
        # The page's language comes inline, so the console starts without waiting for it.
        words = json.dumps(
            {
                "language": language,
                "direction": text_direction(language),
                "messages": messages_of(language),
            },
            ensure_ascii=False,
        ).replace("</", "<\\/")
        body = (
            f"<div id='app'></div><script type='application/json' id='console-messages'>{words}</script>"
            f"<script type='module' src='/console/app.js?v={asset_version('app.js', stamp)}'></script>"
        )
    return (
        f"<!doctype html><html lang='{language}' dir='{text_direction(language)}'><head>"
        "<meta charset='utf-8'><meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'>"
        f"<title>{html.escape(title)}</title>"
        f"<link rel='stylesheet' href='/console/app.css?v={asset_version('app.css', stamp)}'>"
        f"</head><body>{body}</body></html>"
    )


@cache
def packed_shell(language: str, stamp: int) -> bytes:
    return gzip.compress(shell(language, stamp).encode(), mtime=0)


@get(PAGES, exclude_from_auth=True, include_in_schema=False, sync_to_thread=False)
def console_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    language, stamp = page_language(request), build_stamp()
    settings = runtime_of(request).settings
    policy = CONTENT_SECURITY_POLICY
    if request.url.path == BILLING_PAGE and settings.stripe_secret_key:
        policy = billing_policy(settings)
    headers = {
        "cache-control": "no-cache",
        "x-frame-options": "DENY",
        "vary": "accept-encoding, cookie",
        "content-security-policy": policy,
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
    }
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["content-encoding"] = "gzip"
        return Response(packed_shell(language, stamp), media_type="text/html", headers=headers)
    return Response(shell(language, stamp).encode(), media_type="text/html", headers=headers)


@get("/console/{name:str}", exclude_from_auth=True, include_in_schema=False, sync_to_thread=False)
def console_asset(request: Request[Any, Any, Any], name: FromPath[str]) -> File:
    path = CONSOLE_DIR / name
    suffix = path.suffix
    if "/" in name or name.startswith(".") or suffix not in ASSET_TYPES or not path.is_file():
        raise NotFoundException()
    # The type is set here whole: Litestar's file response would add the charset twice.
    headers = {
        "content-type": ASSET_TYPES[suffix],
        "cache-control": "public, max-age=31536000, immutable",
        "vary": "accept-encoding",
    }
    compressed = path.with_name(path.name + ".gz")
    if "gzip" in request.headers.get("accept-encoding", "") and compressed.is_file():
        path, headers["content-encoding"] = compressed, "gzip"
    return File(
        path,
        filename=name,
        content_disposition_type="inline",
        media_type=ASSET_TYPES[suffix],
        headers=headers,
    )


@get(
    "/api/console/messages/{language:str}",
    exclude_from_auth=True,
    include_in_schema=False,
    sync_to_thread=False,
)
def messages_for(language: FromPath[str]) -> Response[dict[str, Any]]:
    chosen = supported(language)
    if chosen is None or chosen not in LANGUAGES:
        raise NotFoundException()
    return Response(
        {"language": chosen, "direction": text_direction(chosen), "messages": messages_of(chosen)},
        headers={"cache-control": "public, max-age=300"},
    )


ROUTES = [console_page, console_asset, messages_for]
