"""A ticket summarized by AI for the reader, in their language, from its description and
comments, through the real `openai` library against the local OpenAI-protocol server."""

from __future__ import annotations

from tests.conftest import RunningHub, capture_pushes, with_every_role
from tests.helpers.openai_server import OpenAIServer


async def test_a_ticket_and_its_comments_are_summarized_in_the_readers_language(
    assisted: tuple[RunningHub, OpenAIServer],
) -> None:
    hub, server = assisted
    organization = await with_every_role(hub, language="ar")
    pushes = await capture_pushes(hub, organization)
    try:
        async with hub.client(organization.admin.token) as client:
            made = await client.post(
                "/api/tickets", json={"title": "Refund not received", "description": "Paid twice on the 3rd."}
            )
            assert made.status_code == 201, made.text
            ticket = made.json()["id"]
            for text in ("Asked finance to check.", "Finance confirms the double charge."):
                assert (
                    await client.post(f"/api/tickets/{ticket}/comments", json={"text": text})
                ).status_code == 201
            asked = await client.post(f"/api/tickets/{ticket}/ai/summarize")
        assert asked.status_code == 202, asked.text
        done = await pushes.expect(
            "aiDone", to={"admin"}, where=lambda p: p["requestId"] == asked.json()["request_id"]
        )
        assert done["text"].endswith("[ar]")  # the admin reads Arabic
        sent = server.chats()[-1]["messages"][1]["content"]
        assert sent.splitlines() == [
            "Title: Refund not received",
            "Description: Paid twice on the 3rd.",
            "Team comment: Asked finance to check.",
            "Team comment: Finance confirms the double charge.",
        ]
        # An agent the ticket is not assigned to does not see it: 404, nothing asked.
        asked_before = len(server.chats())
        async with hub.client(organization.members["agent"].token) as client:
            hidden = await client.post(f"/api/tickets/{ticket}/ai/summarize")
        assert hidden.status_code == 404
        assert len(server.chats()) == asked_before
    finally:
        await pushes.close()
