"""Media: uploads checked by their bytes, expiring links, attachments in and out of the API channel."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from tests.conftest import Organization, RunningHub, eventually
from tests.helpers.channels import PDF, Receiver, make_channel, tiny_png


async def upload(
    hub: RunningHub, token: str, data: bytes, content_type: str, name: str = "file"
) -> httpx.Response:
    async with hub.client(token) as client:
        return await client.post("/api/media", files={"data": (name, data, content_type)})


async def test_upload_and_expiring_link(hub: RunningHub, organization: Organization) -> None:
    uploaded = await upload(hub, organization.admin.token, tiny_png(), "image/png", "pixel.png")
    assert uploaded.status_code == 201, uploaded.text
    media = uploaded.json()
    assert (media["kind"], media["content_type"], media["filename"]) == ("image", "image/png", "pixel.png")
    async with httpx.AsyncClient(base_url=hub.url) as client:
        served = await client.get(media["url"])  # no token: the link is the permission
        assert served.status_code == 200
        assert served.content == tiny_png()
        assert served.headers["content-type"] == "image/png"
        tampered = media["url"].replace("signature=", "signature=0")
        assert (await client.get(tampered)).status_code == 404
        expired = media["url"].split("?")[0] + f"?expires={int(time.time()) - 10}&signature=" + "0" * 64
        assert (await client.get(expired)).status_code == 404


@pytest.mark.parametrize(
    ("data", "declared", "status"),
    [
        (b"just some words, not an image", "image/png", 415),
        (b"MZ\x90\x00 an executable", "application/octet-stream", 415),
        (b"\xff\xd8\xff" + b"\x00" * (5 * 1024 * 1024 + 1), "image/jpeg", 413),
    ],
)
async def test_unknown_or_oversized_media_is_refused(
    hub: RunningHub, organization: Organization, data: bytes, declared: str, status: int
) -> None:
    refused = await upload(hub, organization.admin.token, data, declared)
    assert refused.status_code == status, refused.text


async def test_inbound_attachments_by_data_and_by_url(
    hub: RunningHub,
    organization: Organization,
    receiver: Receiver,
) -> None:
    channel = await make_channel(hub, organization, receiver)
    png = base64.b64encode(tiny_png()).decode()
    by_data = await channel.send(
        external_id="img-1",
        **{"from": "+96599123456"},
        text="صورة الفاتورة",
        attachments=[{"data_base64": png, "content_type": "image/png", "filename": "invoice.png"}],
    )
    assert by_data.status_code == 202, by_data.text
    # A document fetched from a URL the sender gives (here the local receiver serves it).
    pdf_url = receiver.url.replace("/hook", "/files/contract.pdf")
    by_url = await channel.send(
        external_id="doc-1",
        **{"from": "+96599123456"},
        attachments=[{"url": pdf_url, "content_type": "application/pdf", "filename": "contract.pdf"}],
    )
    assert by_url.status_code == 202, by_url.text
    wrong = await channel.send(
        external_id="bad-1",
        **{"from": "+96599123456"},
        attachments=[{"data_base64": base64.b64encode(b"plain words").decode(), "content_type": "image/png"}],
    )
    assert wrong.status_code == 415
    async with hub.client(organization.admin.token) as client:
        items = (
            await client.get(f"/api/inbox/conversations/{by_data.json()['conversation_id']}/messages")
        ).json()["items"]
        assert [m["external_id"] for m in items] == ["doc-1", "img-1"]  # the refused one left nothing
        document, image = items
        assert image["kind"] == "image"
        assert image["text"] == "صورة الفاتورة"
        assert image["attachments"][0]["filename"] == "invoice.png"
        assert document["kind"] == "document"
        fetched = await client.get(document["attachments"][0]["url"])
        assert fetched.content == PDF


async def test_reply_with_an_attachment_reaches_the_webhook(
    hub: RunningHub,
    organization: Organization,
    receiver: Receiver,
) -> None:
    channel = await make_channel(hub, organization, receiver)
    stored = (
        await channel.send(external_id="a-1", **{"from": "+96599223344"}, text="send me the form")
    ).json()
    media = (await upload(hub, organization.admin.token, PDF, "application/pdf", "form.pdf")).json()
    async with hub.client(organization.admin.token) as client:
        missing = await client.post(
            f"/api/inbox/conversations/{stored['conversation_id']}/messages",
            json={"attachments": ["01a20000-0000-7000-8000-000000000000"]},
        )
        assert missing.status_code == 400
        assert missing.json()["errors"][0]["field"] == "attachments"
        sent = await client.post(
            f"/api/inbox/conversations/{stored['conversation_id']}/messages",
            json={"attachments": [media["id"]]},
        )
        assert sent.status_code == 201, sent.text
        assert sent.json()["kind"] == "document"
    post: dict[str, Any] = (await eventually(lambda: receiver.of_type("message")))[0]
    attachment = post["attachments"][0]
    assert attachment["filename"] == "form.pdf"
    assert attachment["content_type"] == "application/pdf"
    # The hub always knows its public address, so the receiver gets an expiring link to the file.
    assert attachment["url"].startswith(hub.settings.public_url + "/api/media/")
    async with httpx.AsyncClient() as client:
        assert (await client.get(attachment["url"])).content == PDF


async def test_a_file_whose_row_never_commits_is_not_kept(
    hub: RunningHub, organization: Organization
) -> None:
    from hub import storage

    async def save(session: Any, name: str) -> Any:
        return await storage.save_media(
            session, hub.settings, data=PDF, declared_type="application/pdf", filename=name
        )

    async with hub.runtime.db.session(organization.id) as session:
        kept = await save(session, "kept.pdf")
        await session.commit()
    async with hub.runtime.db.session(organization.id) as session:
        rolled_back = await save(session, "rolled-back.pdf")
        await session.rollback()
    async with hub.runtime.db.session(organization.id) as session:
        abandoned = await save(session, "abandoned.pdf")  # the block ends without a commit
    root = hub.settings.data_dir / "media"
    assert (root / kept.key).read_bytes() == PDF
    assert not (root / rolled_back.key).exists()
    assert not (root / abandoned.key).exists()


async def test_large_files_stream_to_storage_never_whole_in_memory(
    hub: RunningHub, organization: Organization, receiver: Receiver, tmp_path: Any
) -> None:
    """Three 30 MB documents by URL in one post, and a 30 MB upload: the hub's Python heap grows by
    far less than one of them (it holds a chunk at a time)."""
    import tracemalloc

    from aiohttp import web

    from tests.conftest import one_route_app, serve_web_app

    big = tmp_path / "big.pdf"
    with big.open("wb") as handle:
        handle.write(b"%PDF-1.4\n")
        for _ in range(30):
            handle.write(b"\0" * (1024 * 1024))

    async def file(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(big)

    runner, address = await serve_web_app(one_route_app("/{name}", file, "GET"))
    channel = await make_channel(hub, organization, receiver)
    tracemalloc.start()
    try:
        posted = await channel.send(
            external_id="big-1",
            **{"from": "+96599123999"},
            attachments=[
                {"url": f"{address}/{n}.pdf", "content_type": "application/pdf", "filename": f"{n}.pdf"}
                for n in range(3)
            ],
        )
        _, peak_inbound = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        with big.open("rb") as source:
            async with hub.client(organization.admin.token) as client:
                uploaded = await client.post(
                    "/api/media", files={"data": ("big.pdf", source, "application/pdf")}
                )
        _, peak_upload = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await runner.cleanup()
    assert posted.status_code == 202, posted.text
    assert uploaded.status_code == 201, uploaded.text
    size = big.stat().st_size
    assert uploaded.json()["size"] == size
    assert peak_inbound < size / 3, peak_inbound
    assert peak_upload < size / 3, peak_upload
