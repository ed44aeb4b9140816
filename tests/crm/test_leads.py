"""Lead capture from a website form: person, company, deal and timeline; repeats, robots, origins
and the rate limit."""

from __future__ import annotations

import asyncio
import time

from tests.conftest import Organization, RunningHub, eventually, register
from tests.helpers.sockets import connect


async def test_a_lead_becomes_a_customer_a_company_and_a_deal(
    hub: RunningHub, organization: Organization
) -> None:
    manager = await connect(hub, organization.members["manager"].token)
    agent = await connect(hub, organization.members["agent"].token)
    url = f"/api/public/{organization.slug}/leads"
    form = {
        "name": "Mona Saleh",
        "email": "Mona@Tamr.SA",
        "phone": "+966 55 765 4321",
        "company": "Tamr Trading",
        "message": "We need 40 trackers",
        "source": "pricing page",
        "locale": "en",
        "idempotency_key": "form-7f3a",
    }
    async with hub.client(language="en") as client:
        first = await client.post(url, json=form)
        assert first.status_code == 202, first.text
        assert first.json() == {"detail": "Thank you. We will be in touch soon."}
        again = await client.post(url, json=form)  # the page posted twice: nothing new
        assert again.json() == first.json()
        # Later the same person writes again, without a key: the known customer is not changed,
        # and the answer is word for word the one a stranger gets.
        later = await client.post(
            url,
            json={
                "name": "Someone Else",
                "email": "mona@tamr.sa",
                "phone": "+966501112222",
                "company": "Other",
            },
        )
        assert later.json() == first.json()
        robot = await client.post(
            url, json={**form, "idempotency_key": None, "website": "http://spam.example"}
        )
        assert robot.status_code == 202
        assert robot.json() == first.json()
        nothing = await client.post(url, json={"name": "No contact"})
        assert nothing.status_code == 400
        assert nothing.json()["errors"][0]["field"] == "email"
        bad_email = await client.post(url, json={"name": "x", "email": "not-an-address"})
        assert bad_email.json()["errors"][0]["field"] == "email"
        assert (await client.post("/api/public/no-such-organization/leads", json=form)).status_code == 404
        arabic = await client.post(url, json={"name": "ليلى", "email": "layla@example.test", "locale": "ar"})
        assert arabic.json() == {"detail": "شكرًا لك. سنتواصل معك قريبًا."}

    async with hub.client(organization.members["manager"].token, language="en") as client:
        found = (await client.get("/api/crm/customers", params={"q": "tamr.sa"})).json()["items"]
        assert len(found) == 1
        customer = found[0]
        assert customer["name"] == "Mona Saleh"
        assert customer["email"] == "mona@tamr.sa"
        assert customer["phone"] == "+966557654321"
        companies = (await client.get("/api/crm/companies")).json()["items"]
        assert [c["name"] for c in companies] == ["Tamr Trading"]
        assert customer["company_id"] == companies[0]["id"]
        stages = (await client.get("/api/crm/sales-stages")).json()
        board = (await client.get("/api/crm/board", params={"customer": customer["id"]})).json()
        deals = [deal for stage in board for deal in stage["deals"]]
        assert len(deals) == 1  # the later post made no deal of its own
        deal = deals[0]
        assert deal["stage_id"] == stages[0]["id"]
        assert deal["source"] == "pricing page"
        assert deal["company_id"] == companies[0]["id"]
        timeline = (await client.get(f"/api/crm/customers/{customer['id']}/activity")).json()["items"]
        captured = [a for a in timeline if a["kind"] == "lead_captured"]
        assert [a["text"] for a in captured] == [None, "We need 40 trackers"]
        review = captured[0]["details"]
        assert review["review"] is True
        assert review["submitted"] == {
            "name": "Someone Else",
            "email": "mona@tamr.sa",
            "phone": "+966501112222",
        }
        assert review["company"] == "Other"

    pushed = await eventually(lambda: manager.named("leadCreated"))
    assert pushed[0]["name"] == "Mona Saleh"
    assert pushed[0]["company"] == "Tamr Trading"
    assert agent.named("leadCreated") == []  # managers and admins follow leads; agents do not
    for screen in (manager, agent):
        await screen.client.disconnect()


async def test_browsers_post_only_from_the_organizations_pages(
    hub: RunningHub, organization: Organization
) -> None:
    url = f"/api/public/{organization.slug}/leads"
    lead = {"name": "Web visitor", "email": "visitor@example.com"}
    # The limit counts per clock minute: start early in one, so every post below falls in it.
    if time.time() % 60 > 40:
        await asyncio.sleep(60 - time.time() % 60 + 0.1)
    async with hub.client() as client:
        refused = await client.post(url, json=lead, headers={"Origin": "https://shop.example.com"})
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["field"] == "origin"
    async with hub.client(organization.admin.token) as client:
        changed = await client.patch(
            "/api/crm/settings",
            json={"lead_origins": ["https://Shop.example.com", "https://shop.example.com"]},
        )
        assert changed.json()["lead_origins"] == ["https://shop.example.com"]
        assert (
            await client.patch("/api/crm/settings", json={"lead_origins": ["not a url"]})
        ).status_code == 400
    async with hub.client(organization.members["manager"].token) as client:
        assert (await client.patch("/api/crm/settings", json={"lead_origins": []})).status_code == 403
    async with hub.client() as client:
        preflight = await client.options(
            url, headers={"Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
        elsewhere = await client.options(url, headers={"Origin": "https://evil.example.com"})
        assert "Access-Control-Allow-Origin" not in elsewhere.headers
        accepted = await client.post(url, json=lead, headers={"Origin": "https://shop.example.com"})
        assert accepted.status_code == 202
        assert accepted.headers["Access-Control-Allow-Origin"] == "https://shop.example.com"
        # A server posting (no Origin) is not a browser: allowed.
        assert (await client.post(url, json={**lead, "email": "server@example.com"})).status_code == 202
        # One address may post a few times a minute, not more.
        statuses = [
            (await client.post(url, json={**lead, "email": f"v{n}@example.com"})).status_code
            for n in range(12)
        ]
        assert statuses.count(202) == 8  # 10 a minute, two of them used above
        assert set(statuses[8:]) == {429}
    other = await register(hub)
    async with hub.client(other.admin.token) as client:
        assert (await client.get("/api/crm/customers")).json()["items"] == []
