"""How the hub serves the console: the page shell in the reader's language and direction, the
built files (compressed when the browser accepts it), and each language's messages."""

from __future__ import annotations

import pytest

from tests.conftest import RunningHub
from tests.console.conftest import ROOT, build_console, missing_parts, unavailable

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="session")
def built() -> None:
    problem = missing_parts()
    if problem and "npm" in problem:
        unavailable(problem)
    build_console()


async def test_every_console_path_answers_the_page_in_the_readers_language(
    hub: RunningHub, built: None
) -> None:
    async with hub.client() as client:
        arabic = await client.get("/inbox/0190abcd", headers={"accept-language": "ar-SA,en;q=0.5"})
        english = await client.get("/reset-password?token=x", headers={"accept-language": "en-GB"})
        api_missing = await client.get("/api/nothing-here")
    async with hub.client() as client:
        client.cookies.set("hub_language", "ar")
        chosen = await client.get("/", headers={"accept-language": "en"})
    assert arabic.status_code == english.status_code == 200
    assert "<html lang='ar' dir='rtl'>" in arabic.text
    assert "<title>المركز</title>" in arabic.text
    assert "<html lang='en' dir='ltr'>" in english.text
    assert "<html lang='ar' dir='rtl'>" in chosen.text  # the language the person chose wins
    assert arabic.headers["x-frame-options"] == "DENY"
    assert "script-src 'self';" in arabic.headers["content-security-policy"]
    # The API's own paths stay JSON, never the page.
    assert api_missing.status_code == 404
    assert api_missing.headers["content-type"].startswith("application/json")


async def test_built_files_are_served_compressed_and_cached(hub: RunningHub, built: None) -> None:
    source = (ROOT / "console" / "dist" / "app.js").read_bytes()
    async with hub.client() as client:
        page = (await client.get("/")).text
        version = page.split("/console/app.js?v=", 1)[1].split("'", 1)[0]
        plain = await client.get(f"/console/app.js?v={version}", headers={"accept-encoding": "identity"})
        compressed = await client.get("/console/app.js", headers={"accept-encoding": "gzip, br"})
        for wrong in ("/console/.fingerprint", "/console/app.py", "/console/missing.js"):
            assert (await client.get(wrong)).status_code == 404, wrong
    assert plain.content == source
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "immutable" in plain.headers["cache-control"]
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.content == source  # httpx undoes the gzip, as a browser does
    assert int(compressed.headers["content-length"]) < len(source) / 2


async def test_each_language_gets_its_messages(hub: RunningHub) -> None:
    async with hub.client() as client:
        arabic = (await client.get("/api/console/messages/ar")).json()
        english = (await client.get("/api/console/messages/en")).json()
        unknown = await client.get("/api/console/messages/fr")
    assert arabic["direction"] == "rtl"
    assert arabic["messages"]["Inbox"] == "صندوق الوارد"
    assert english["direction"] == "ltr"
    assert english["messages"]["Inbox"] == "Inbox"
    assert unknown.status_code == 404
