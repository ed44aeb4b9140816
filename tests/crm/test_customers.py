"""Customers through the API: phone numbers in E.164, duplicates, typed attributes, search, who
may do what."""

from __future__ import annotations

from tests.conftest import Organization, RunningHub, register
from tests.helpers.channels import Receiver, make_channel


async def test_customers_are_created_read_updated_and_deleted(
    hub: RunningHub, organization: Organization
) -> None:
    async with hub.client(organization.admin.token, language="en") as client:
        assert (
            await client.patch("/api/settings/organization", json={"default_region": "SA"})
        ).status_code == 200
        created = await client.post(
            "/api/crm/customers",
            json={
                "name": " Huda Al-Harbi ",
                "phone": "050 123 4567",  # local format: read with the organization's region
                "email": "Huda@Example.COM",
                "language": "ar",
                "tags": ["vip", "riyadh", "vip"],
            },
        )
        assert created.status_code == 201, created.text
        customer = created.json()
        assert customer["name"] == "Huda Al-Harbi"
        assert customer["phone"] == "+966501234567"
        assert customer["email"] == "huda@example.com"
        assert customer["tags"] == ["riyadh", "vip"]
        assert customer["opted_out"] is False

        same_phone = await client.post(
            "/api/crm/customers", json={"name": "Another", "phone": "+966 50 123 4567"}
        )
        assert same_phone.status_code == 409
        assert same_phone.json()["existing_id"] == customer["id"]
        assert same_phone.json()["errors"][0]["field"] == "phone"
        same_email = await client.post(
            "/api/crm/customers", json={"name": "Another", "email": "huda@example.com"}
        )
        assert same_email.status_code == 409
        assert same_email.json()["errors"][0]["field"] == "email"
        assert same_email.json()["detail"] == "A customer with this e-mail address exists already."

        bad_phone = await client.post("/api/crm/customers", json={"name": "X", "phone": "12"})
        assert bad_phone.status_code == 400
        assert bad_phone.json()["errors"][0]["field"] == "phone"
        bad_email = await client.post("/api/crm/customers", json={"name": "X", "email": "not-an-email"})
        assert bad_email.status_code == 400
        assert bad_email.json()["errors"][0]["field"] == "email"
        bad_region = await client.patch("/api/settings/organization", json={"default_region": "XX"})
        assert bad_region.status_code == 400
        assert bad_region.json()["errors"][0]["field"] == "default_region"

        changed = await client.patch(
            f"/api/crm/customers/{customer['id']}",
            json={"opted_out": True, "phone": "+971501234567", "tags": []},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["opted_out"] is True
        assert changed.json()["phone"] == "+971501234567"
        read = (await client.get(f"/api/crm/customers/{customer['id']}")).json()
        assert read["opted_out"] is True
        assert read["tags"] == []

        assert (await client.delete(f"/api/crm/customers/{customer['id']}")).status_code == 204
        assert (await client.get(f"/api/crm/customers/{customer['id']}")).status_code == 404


async def test_custom_attributes_are_typed(hub: RunningHub, organization: Organization) -> None:
    async with hub.client(organization.admin.token, language="en") as client:
        for definition in (
            {"key": "city", "label": "City", "kind": "text"},
            {"key": "budget", "label": "Budget", "kind": "number"},
            {"key": "renewal", "label": "Renewal", "kind": "date"},
            {"key": "tier", "label": "Tier", "kind": "choice", "choices": ["gold", "silver"]},
        ):
            assert (await client.post("/api/crm/attributes", json=definition)).status_code == 201
        assert (
            await client.post("/api/crm/attributes", json={"key": "city", "label": "x", "kind": "text"})
        ).status_code == 409
        no_choices = await client.post(
            "/api/crm/attributes", json={"key": "size", "label": "Size", "kind": "choice"}
        )
        assert no_choices.json()["errors"][0]["field"] == "choices"
        assert [d["key"] for d in (await client.get("/api/crm/attributes")).json()] == [
            "budget",
            "city",
            "renewal",
            "tier",
        ]

        good = await client.post(
            "/api/crm/customers",
            json={
                "name": "Omar",
                "attributes": {"city": "Jeddah", "budget": 25000, "renewal": "2027-03-01", "tier": "gold"},
            },
        )
        assert good.status_code == 201, good.text
        assert good.json()["attributes"] == {
            "city": "Jeddah",
            "budget": 25000,
            "renewal": "2027-03-01",
            "tier": "gold",
        }
        for attributes, field in (
            ({"colour": "red"}, "attributes.colour"),
            ({"budget": "a lot"}, "attributes.budget"),
            ({"budget": True}, "attributes.budget"),
            ({"renewal": "next spring"}, "attributes.renewal"),
            ({"tier": "bronze"}, "attributes.tier"),
        ):
            refused = await client.patch(
                f"/api/crm/customers/{good.json()['id']}", json={"attributes": attributes}
            )
            assert refused.status_code == 400, attributes
            assert refused.json()["errors"][0]["field"] == field
        # Changes merge into what is stored; null removes a value.
        merged = await client.patch(
            f"/api/crm/customers/{good.json()['id']}", json={"attributes": {"city": None, "budget": 30000.5}}
        )
        assert merged.json()["attributes"] == {"budget": 30000.5, "renewal": "2027-03-01", "tier": "gold"}
        found = (await client.get("/api/crm/customers", params={"q": "2027-03"})).json()["items"]
        assert [c["name"] for c in found] == ["Omar"]  # attribute values are searched too


async def test_search_filters_sorting_and_cursor(hub: RunningHub, organization: Organization) -> None:
    async with hub.client(organization.members["manager"].token) as client:
        names = ["Zaid", "Amal", "Maha", "Badr", "Layla"]
        for number, name in enumerate(names):
            body = {"name": name, "phone": f"+9665012300{number:02d}", "tags": ["lead"] if number % 2 else []}
            assert (await client.post("/api/crm/customers", json=body)).status_code == 201
        newest = (await client.get("/api/crm/customers")).json()["items"]
        assert [c["name"] for c in newest] == list(reversed(names))
        by_name, cursor = [], None
        while True:
            params = {"sort": "name", "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/crm/customers", params=params)).json()
            by_name += [c["name"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert by_name == sorted(names)
        tagged = (await client.get("/api/crm/customers", params={"tag": "lead"})).json()["items"]
        assert sorted(c["name"] for c in tagged) == ["Amal", "Badr"]
        assert [
            c["name"] for c in (await client.get("/api/crm/customers", params={"q": "LAY"})).json()["items"]
        ] == ["Layla"]
        assert [
            c["name"]
            for c in (await client.get("/api/crm/customers", params={"q": "501230003"})).json()["items"]
        ] == ["Badr"]
        bad = await client.get("/api/crm/customers", params={"sort": "name", "cursor": "garbage"})
        assert bad.status_code == 400


async def test_search_in_arabic_with_wildcards_and_near_spellings(
    hub: RunningHub, organization: Organization
) -> None:
    async with hub.client(organization.admin.token) as client:
        city = {"key": "city", "label": "City", "kind": "text"}
        assert (await client.post("/api/crm/attributes", json=city)).status_code == 201
        people = [
            {"name": "محمد العتيبي", "tags": ["مهم"], "attributes": {"city": "الرياض"}},
            {"name": "Mohammed Saleh", "tags": ["vip"], "attributes": {"city": "Jeddah"}},
            {"name": "Noura 100%", "email": "noura_1@example.com"},
            {"name": "Noura Ali", "email": "nouraz1@example.com"},
        ]
        for body in people:
            assert (await client.post("/api/crm/customers", json=body)).status_code == 201

        async def names(**params: str) -> list[str]:
            found = (await client.get("/api/crm/customers", params=params)).json()["items"]
            return sorted(c["name"] for c in found)

        assert await names(q="العتيبي") == ["محمد العتيبي"]
        assert await names(q="الرياض") == ["محمد العتيبي"]  # an attribute value in Arabic
        assert await names(tag="مهم") == ["محمد العتيبي"]
        # % and _ are searched as themselves, not as wildcards.
        assert await names(q="100%") == ["Noura 100%"]
        assert await names(q="a_1") == ["Noura 100%"]
        near = await names(q="Mohamed")
        if hub.kind == "postgres":
            assert near == ["Mohammed Saleh"]  # a trigram match for a name spelt differently
        else:
            assert near == []  # the embedded database matches exact parts only


async def test_agents_read_managers_write_and_other_organizations_see_nothing(
    hub: RunningHub, organization: Organization
) -> None:
    async with hub.client(organization.members["manager"].token) as client:
        customer = (await client.post("/api/crm/customers", json={"name": "Sara"})).json()
    async with hub.client(organization.members["agent"].token) as client:
        assert (await client.get(f"/api/crm/customers/{customer['id']}")).status_code == 200
        assert (await client.post("/api/crm/customers", json={"name": "No"})).status_code == 403
        assert (
            await client.patch(f"/api/crm/customers/{customer['id']}", json={"name": "No"})
        ).status_code == 403
        assert (await client.delete(f"/api/crm/customers/{customer['id']}")).status_code == 403
    other = await register(hub)
    async with hub.client(other.admin.token) as client:
        assert (await client.get(f"/api/crm/customers/{customer['id']}")).status_code == 404
        assert (
            await client.patch(f"/api/crm/customers/{customer['id']}", json={"name": "x"})
        ).status_code == 404
        assert (await client.get("/api/crm/customers")).json()["items"] == []
        # Without a default region, digits are read as an international number.
        no_plus = await client.post("/api/crm/customers", json={"name": "Rami", "phone": "00971 50 123 4567"})
        assert no_plus.json()["phone"] == "+971501234567"
        digits = await client.post("/api/crm/customers", json={"name": "Rana", "phone": "966 55 000 1122"})
        assert digits.json()["phone"] == "+966550001122"
        # The same phone number is free in another organization.
        assert (
            await client.post("/api/crm/customers", json={"name": "Sara", "phone": "+966501112299"})
        ).status_code == 201
    async with hub.client(organization.admin.token) as client:
        assert (await client.patch("/api/settings/modules", json={"crm": False})).status_code in (200, 204)
        switched_off = await client.get("/api/crm/customers")
        assert switched_off.status_code == 403


async def test_merging_keeps_every_conversation_deal_and_activity(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    website, shop = (
        await make_channel(hub, organization, receiver),
        await make_channel(hub, organization, receiver),
    )
    # One person, two records: a number on the website channel, another number on both channels.
    kept = (
        await website.send(external_id="m-1", **{"from": "+966500000001"}, name="Ali", text="first")
    ).json()
    dup = (
        await website.send(external_id="m-2", **{"from": "+966500000002"}, name="Ali B", text="second")
    ).json()
    dup_shop = (await shop.send(external_id="m-3", **{"from": "+966500000002"}, text="at the shop")).json()
    async with hub.client(organization.admin.token, language="en") as client:
        customer_of = {
            key: (await client.get(f"/api/inbox/conversations/{stored['conversation_id']}")).json()[
                "customer"
            ]["id"]
            for key, stored in (("kept", kept), ("dup", dup))
        }
        await client.patch(
            f"/api/crm/customers/{customer_of['dup']}", json={"email": "ali@example.com", "tags": ["vip"]}
        )
        deal = (
            await client.post("/api/crm/deals", json={"title": "Order", "customer_id": customer_of["dup"]})
        ).json()
        note = (
            await client.post(
                f"/api/crm/customers/{customer_of['dup']}/activity", json={"kind": "note", "text": "n"}
            )
        ).json()

        merged = await client.post(
            f"/api/crm/customers/{customer_of['kept']}/merge", json={"duplicate_id": customer_of["dup"]}
        )
        assert merged.status_code == 200, merged.text
        assert merged.json()["phone"] == "+966500000001"  # the kept record's own values win
        assert merged.json()["email"] == "ali@example.com"  # what it lacked comes from the duplicate
        assert merged.json()["tags"] == ["vip"]
        assert merged.json()["other_phones"] == ["+966500000002"]  # the duplicate's number stays his
        assert (await client.get(f"/api/crm/customers/{customer_of['dup']}")).status_code == 404
        taken = await client.post("/api/crm/customers", json={"name": "Ali C", "phone": "+966 50 000 0002"})
        assert taken.status_code == 409
        assert taken.json()["existing_id"] == customer_of["kept"]

        conversations = (await client.get("/api/inbox/conversations")).json()["items"]
        assert {c["customer"]["id"] for c in conversations} == {customer_of["kept"]}
        assert sorted(c["id"] for c in conversations) == sorted(
            [kept["conversation_id"], dup_shop["conversation_id"]]
        )
        on_website = next(c for c in conversations if c["id"] == kept["conversation_id"])
        assert on_website["unread_count"] == 2
        assert on_website["last_message_preview"] == "second"
        texts = (await client.get(f"/api/inbox/conversations/{kept['conversation_id']}/messages")).json()[
            "items"
        ]
        assert [m["text"] for m in texts] == ["second", "first"]
        assert (await client.get(f"/api/crm/deals/{deal['id']}")).json()["customer_id"] == customer_of["kept"]
        timeline = (await client.get(f"/api/crm/customers/{customer_of['kept']}/activity")).json()["items"]
        assert note["id"] in [a["id"] for a in timeline]
        assert timeline[0]["kind"] == "customers_merged"
        assert timeline[0]["details"]["merged_name"] == "Ali B"

        itself = await client.post(
            f"/api/crm/customers/{customer_of['kept']}/merge", json={"duplicate_id": customer_of["kept"]}
        )
        assert itself.json()["errors"][0]["field"] == "duplicate_id"
    other = await register(hub)
    async with hub.client(other.admin.token) as client:
        theirs = (await client.post("/api/crm/customers", json={"name": "Theirs"})).json()
        crossed = await client.post(
            f"/api/crm/customers/{theirs['id']}/merge", json={"duplicate_id": customer_of["kept"]}
        )
        assert crossed.status_code == 400
        assert crossed.json()["errors"][0]["field"] == "duplicate_id"
    # The next message from the merged number finds the kept customer.
    again = (await website.send(external_id="m-4", **{"from": "+966500000001"}, text="thanks")).json()
    assert again["conversation_id"] == kept["conversation_id"]
    # So does the next message from the duplicate's number, on either channel.
    again = (await website.send(external_id="m-5", **{"from": "966500000002"}, text="me again")).json()
    assert again["conversation_id"] == kept["conversation_id"]
    again = (await shop.send(external_id="m-6", **{"from": "+966500000002"}, text="shop again")).json()
    assert again["conversation_id"] == dup_shop["conversation_id"]
    async with hub.client(organization.admin.token, language="en") as client:
        customers = (await client.get("/api/crm/customers")).json()["items"]
        assert [c["id"] for c in customers] == [customer_of["kept"]]
        # Making the other number the main one leaves it out of the others.
        moved = await client.patch(
            f"/api/crm/customers/{customer_of['kept']}", json={"phone": "+966500000002"}
        )
        assert moved.json()["phone"] == "+966500000002"
        assert moved.json()["other_phones"] == []
    # Another organization's customer with that number is its own.
    async with hub.client(other.admin.token) as client:
        theirs = await client.post("/api/crm/customers", json={"name": "Also Ali", "phone": "+966500000002"})
        assert theirs.status_code == 201
