"""The knowledge base: managers and admins keep the articles, everyone in the inbox reads and
searches them, in Arabic and English, and another organization's articles are invisible."""

from __future__ import annotations

from tests.conftest import Organization, RunningHub, register, with_every_role

DELIVERY = {
    "title": "مدة التوصيل",
    "body": "يصل الطلب إلى جدة والرياض خلال يومين، وإلى باقي المدن خلال أربعة أيام.",
    "language": "ar",
    "tags": ["شحن"],
}
REFUNDS = {
    "title": "Refunds",
    "body": "Refunds are paid back to the card within five working days of the return.",
    "language": "en",
    "tags": ["payments"],
}


async def test_managers_keep_the_articles_and_everyone_reads_them(
    hub: RunningHub, organization: Organization
) -> None:
    manager, agent = organization.members["manager"], organization.members["agent"]
    async with hub.client(manager.token, language="en") as client:
        made = await client.post("/api/inbox/knowledge", json=DELIVERY)
        assert made.status_code == 201, made.text
        article = made.json()
        assert article["title"] == "مدة التوصيل"
        assert article["tags"] == ["شحن"]
        assert article["found_by_meaning"] is False  # no AI server here
        # The organization's language when none is given.
        plain = await client.post("/api/inbox/knowledge", json={"title": "Hours", "body": "We open at nine."})
        assert plain.json()["language"] == "ar"
        changed = await client.patch(f"/api/inbox/knowledge/{plain.json()['id']}", json={"language": "en"})
        assert changed.json()["language"] == "en"

        for bad, field in (
            ({"title": "", "body": "x"}, "title"),
            ({"title": "x", "body": ""}, "body"),
            ({"title": "x", "body": "y", "language": "Arabic"}, "language"),
            ({"title": "x", "body": "y", "tags": ["t"] * 21}, "tags"),
            ({"title": "x", "body": "y", "secret": 1}, "secret"),
        ):
            refused = await client.post("/api/inbox/knowledge", json=bad)
            assert refused.status_code == 400, bad
            assert field in refused.text

    async with hub.client(agent.token) as client:
        listed = (await client.get("/api/inbox/knowledge")).json()
        assert {item["title"] for item in listed["items"]} == {"مدة التوصيل", "Hours"}
        assert (await client.get(f"/api/inbox/knowledge/{article['id']}")).json()["body"] == DELIVERY["body"]
        # Agents read; only managers and admins write.
        assert (await client.post("/api/inbox/knowledge", json=REFUNDS)).status_code == 403
        assert (await client.delete(f"/api/inbox/knowledge/{article['id']}")).status_code == 403

    async with hub.client(organization.admin.token) as client:
        assert (await client.delete(f"/api/inbox/knowledge/{article['id']}")).status_code == 204
        assert (await client.get(f"/api/inbox/knowledge/{article['id']}")).status_code == 404
        found = (await client.get("/api/inbox/knowledge", params={"q": "التوصيل"})).json()
        assert found["items"] == []  # deleted: out of the search too


async def test_search_finds_articles_by_their_words_in_arabic_and_english(
    hub: RunningHub, organization: Organization
) -> None:
    other = await with_every_role(hub)
    async with hub.client(other.admin.token) as client:
        # Another organization's article with the very same words.
        theirs = await client.post("/api/inbox/knowledge", json={**REFUNDS, "title": "Their refunds"})
        assert theirs.status_code == 201
    async with hub.client(organization.members["manager"].token) as client:
        delivery = (await client.post("/api/inbox/knowledge", json=DELIVERY)).json()
        refunds = (await client.post("/api/inbox/knowledge", json=REFUNDS)).json()
        await client.post(
            "/api/inbox/knowledge",
            json={"title": "Opening hours", "body": "From nine to five, Sunday to Thursday."},
        )

        async def titles(question: str) -> list[str]:
            answer = await client.get("/api/inbox/knowledge", params={"q": question})
            assert answer.status_code == 200, answer.text
            return [item["title"] for item in answer.json()["items"]]

        # Arabic: without the article prefix, with a conjunction, with vowel marks.
        assert await titles("كم يستغرق توصيل طلبي الى جدة؟") == [delivery["title"]]
        assert await titles("والتوصيل") == [delivery["title"]]
        assert await titles("التَّوصيل") == [delivery["title"]]
        # English: a plural finds the singular, case does not matter, a tag is searched too.
        assert await titles("How do REFUND payments work?") == [refunds["title"]]
        assert await titles("payment") == [refunds["title"]]
        # Words that say nothing find nothing; nor does a question of another subject.
        assert await titles("how are you") == []
        assert await titles("password reset") == []
        # Quotes and operators are words like any other, never the search's syntax.
        assert await titles('refund" OR "x* NEAR(') == [refunds["title"]]

    stranger = await register(hub, name="Stranger Trading")
    async with hub.client(stranger.admin.token) as client:
        assert (await client.get(f"/api/inbox/knowledge/{delivery['id']}")).status_code == 404
        assert (
            await client.patch(f"/api/inbox/knowledge/{delivery['id']}", json={"title": "x"})
        ).status_code == 404
        assert (await client.get("/api/inbox/knowledge", params={"q": "refunds"})).json()["items"] == []
