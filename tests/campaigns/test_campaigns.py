"""Campaigns end to end: recipients, sending through an API channel, results, replies, opt-outs."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

from tests.conftest import Organization, RunningHub, eventually
from tests.helpers.campaigns import (
    CountingReceiver,
    api_channel,
    customers,
    fast_pacing,
    finished,
    poster,
    ready_campaign,
    run_campaign,
    start_campaign,
)


async def test_a_campaign_reaches_each_customer_once_in_their_language(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel = await api_channel(hub, organization, receiver)
    people = await customers(
        hub,
        organization,
        [
            {"name": "Layla Hassan", "phone": "+966501110001", "language": "ar"},
            {"name": "John Smith", "phone": "+966501110002", "language": "en"},
            {"name": "Omar", "phone": "+966501110003"},  # no language: the organization's (Arabic)
            {"name": "Quiet Person", "phone": "+966501110004", "opted_out": True},
            {"name": "No Number", "email": "nonumber@example.test"},
        ],
    )
    manager = organization.members["manager"].token
    campaign = await ready_campaign(
        hub,
        manager,
        {
            "name": "Eid offer",
            "channel_ids": [channel["id"]],
            "template": {
                "ar": "مرحبا {{first_name}}، عرض العيد لك",
                "en": "Hello {{first_name | friend}}, the Eid offer is yours",
            },
            "audience": {"customer_ids": [p["id"] for p in people]},
        },
    )
    assert campaign["audience_status"] == "ready"
    assert campaign["total"] == 3
    report = campaign["audience_report"]
    assert (report["matched"], report["opted_out"], report["no_phone"], report["will_send"]) == (5, 1, 1, 3)
    await fast_pacing(hub, manager, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    async with hub.client(manager) as client:
        started = await client.post(f"/api/campaigns/{campaign['id']}/start")
    assert started.status_code == 200, started.text
    done = await finished(hub, manager, campaign["id"])
    assert done["status"] == "completed"
    assert (done["sent"], done["failed"], done["skipped"]) == (3, 0, 0)
    assert sorted(receiver.ids().values()) == [1, 1, 1]
    texts = {m["to"]: m["text"] for m in receiver.messages}
    assert texts == {
        "+966501110001": "مرحبا Layla، عرض العيد لك",
        "+966501110002": "Hello John, the Eid offer is yours",
        "+966501110003": "مرحبا Omar، عرض العيد لك",
    }
    async with hub.client(manager) as client:
        results = (await client.get(f"/api/campaigns/{campaign['id']}/results")).json()
        assert results["counts"]["sent"] == 3
        assert results["channels"][0]["sent"] == 3
        assert sum(minute["sent"] for minute in results["per_minute"]) == 3
        usage = (await client.get("/api/settings/usage")).json()
    assert usage["metrics"]["messages_sent"] == 3


async def test_replies_receipts_and_the_inbox_history(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel = await api_channel(hub, organization, receiver)
    people = await customers(
        hub,
        organization,
        [{"name": "Rana", "phone": "+966502220001"}, {"name": "Sami", "phone": "+966502220002"}],
    )
    manager = organization.members["manager"].token
    campaign = await ready_campaign(
        hub,
        manager,
        {
            "name": "Welcome",
            "channel_ids": [channel["id"]],
            "template": {"ar": "أهلا {{name}}"},
            "audience": {"customer_ids": [p["id"] for p in people]},
        },
    )
    await fast_pacing(hub, manager, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    await start_campaign(hub, manager, campaign["id"])
    await finished(hub, manager, campaign["id"])
    rana = receiver.to("+966502220001")[0]
    api = poster(channel)
    receipt = await api.post(api.receipts_url, {"external_id": f"ext-{rana['message_id']}", "status": "read"})
    assert receipt.status_code in (200, 202, 204), receipt.text
    answer = await api.send(external_id="in-1", **{"from": "+966502220002"}, text="شكرا، أريد التفاصيل")
    assert answer.status_code in (200, 201, 202), answer.text

    async def followed() -> dict[str, Any] | None:
        async with hub.client(manager) as client:
            results = (await client.get(f"/api/campaigns/{campaign['id']}/results")).json()
        counts = results["counts"]
        return (
            results if counts["read"] == 2 and counts["replied"] == 1 and counts["delivered"] == 2 else None
        )

    results = await eventually(followed, within=15)
    assert results["rates"]["reply"] == 0.5
    # The reply's conversation holds the campaign message before the customer's answer.
    conversation_id = answer.json()["conversation_id"]

    async def history() -> list[dict[str, Any]] | None:
        async with hub.client(organization.admin.token) as client:
            page = (await client.get(f"/api/inbox/conversations/{conversation_id}/messages")).json()
        items = page["items"]
        return items if len(items) == 2 else None

    messages = await eventually(history, within=15)
    texts = sorted((m["direction"], m["text"]) for m in messages)
    assert texts == [("inbound", "شكرا، أريد التفاصيل"), ("outbound", "أهلا Sami")]


async def test_stop_opts_out_with_a_confirmation_in_the_customers_language(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel = await api_channel(hub, organization, receiver)
    api = poster(channel)
    people = await customers(
        hub,
        organization,
        [
            {"name": "Huda", "phone": "+966503330001", "language": "ar"},
            {"name": "Tom", "phone": "+966503330002", "language": "en"},
        ],
    )
    assert (await api.send(external_id="s-1", **{"from": "+966503330001"}, text=" إلغاء ")).status_code in (
        200,
        201,
        202,
    )
    assert (await api.send(external_id="s-2", **{"from": "+966503330002"}, text="Stop!")).status_code in (
        200,
        201,
        202,
    )
    assert (
        await api.send(external_id="s-3", **{"from": "+966503330002"}, text="please don't stop the offers")
    ).status_code in (200, 201, 202)

    async def confirmations() -> list[dict[str, Any]] | None:
        found = [m for m in receiver.messages if m.get("conversation_id")]
        return found if len(found) == 2 else None

    sent = await eventually(confirmations, within=15)
    by_phone = {m["to"]: m["text"] for m in sent}
    assert by_phone["+966503330002"].startswith("You are unsubscribed")
    assert "You" not in by_phone["+966503330001"]  # Arabic
    async with hub.client(organization.admin.token) as client:
        for person in people:
            assert (await client.get(f"/api/crm/customers/{person['id']}")).json()["opted_out"] is True
        # And they are left out of every later campaign.
        body = {
            "name": "Later",
            "channel_ids": [channel["id"]],
            "template": {"ar": "مرحبا"},
            "audience": {"customer_ids": [p["id"] for p in people]},
        }
    later = await ready_campaign(hub, organization.admin.token, body)
    assert later["total"] == 0
    assert later["audience_report"]["opted_out"] == 2
    async with hub.client(organization.admin.token) as client:
        refused = await client.post(f"/api/campaigns/{later['id']}/start")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "audience"


async def test_recipients_from_a_csv_file_become_customers(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel = await api_channel(hub, organization, receiver)
    await customers(hub, organization, [{"name": "Known Person", "phone": "+966504440001"}])
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["name", "mobile"])
    writer.writerow(["Known again", "+966504440001"])
    writer.writerow(["New One", "00966504440002"])
    writer.writerow(["Twice", "+966 50 444 0002"])
    writer.writerow(["Broken", "12"])
    writer.writerow(["Empty", ""])
    async with hub.client(organization.admin.token) as client:
        uploaded = await client.post(
            "/api/media", files={"data": ("people.csv", rows.getvalue().encode(), "text/csv")}
        )
        assert uploaded.status_code == 201, uploaded.text
    campaign = await ready_campaign(
        hub,
        organization.admin.token,
        {
            "name": "From a file",
            "channel_ids": [channel["id"]],
            "template": {"ar": "مرحبا {{name}}"},
            "audience": {"media_id": uploaded.json()["id"], "phone_column": "mobile"},
        },
    )
    report = campaign["audience_report"]
    assert campaign["total"] == 2
    assert (report["invalid"], report["duplicates"], report["created"]) == (2, 1, 1)
    assert [error["row"] for error in report["errors"]] == [5, 6]
    async with hub.client(organization.admin.token) as client:
        found = (await client.get("/api/crm/customers", params={"q": "+966504440002"})).json()["items"]
    assert [c["name"] for c in found] == ["New One"]


async def test_a_segment_audience_preview_export_and_the_timeline(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel = await api_channel(hub, organization, receiver)
    people = await customers(
        hub,
        organization,
        [
            {"name": "Vip One", "phone": "+966505550001", "tags": ["vip"], "language": "en"},
            {"name": "Vip Two", "phone": "+966505550002", "tags": ["vip"], "opted_out": True},
            {"name": "Plain", "phone": "+966505550003", "tags": ["lead"]},
        ],
    )
    admin = organization.admin.token
    async with hub.client(admin) as client:
        segment = await client.post("/api/crm/segments", json={"name": "VIPs", "filters": {"tags": ["vip"]}})
        assert segment.status_code == 201, segment.text
        preview = await client.post(
            "/api/campaigns/preview",
            json={
                "template": {"en": "Hi {{first_name}} from {{company | us}}"},
                "customer_id": people[0]["id"],
            },
        )
        assert preview.json()["messages"] == {"en": "Hi Vip from us"}
    campaign = await ready_campaign(
        hub,
        admin,
        {
            "name": "VIP night",
            "channel_ids": [channel["id"]],
            "template": {"en": "Hi {{first_name}}"},
            "audience": {"segment_id": segment.json()["id"]},
        },
    )
    assert campaign["total"] == 1
    assert (campaign["audience_report"]["matched"], campaign["audience_report"]["opted_out"]) == (2, 1)
    await fast_pacing(hub, admin, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    async with hub.client(admin) as client:
        assert (await client.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
    await finished(hub, admin, campaign["id"])
    async with hub.client(admin) as client:
        exported = await client.get(f"/api/campaigns/{campaign['id']}/recipients/export")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(row["phone"], row["status"]) for row in rows] == [("+966505550001", "sent")]

        async def timeline() -> list[str] | None:
            items = (await client.get(f"/api/crm/customers/{people[0]['id']}/activity")).json()["items"]
            kinds = [item["kind"] for item in items]
            return kinds if "campaign_message" in kinds else None

        assert await eventually(timeline, within=10)
        listed = (await client.get("/api/campaigns", params={"status": "completed"})).json()["items"]
        assert campaign["id"] in [c["id"] for c in listed]


async def test_an_organizations_own_opt_out_keyword(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel = await api_channel(hub, organization, receiver)
    api = poster(channel)
    person = (await customers(hub, organization, [{"name": "Nour", "phone": "+966506660001"}]))[0]
    async with hub.client(organization.admin.token) as client:
        changed = await client.patch("/api/crm/settings", json={"opt_out_keywords": ["لا أريد"]})
        assert changed.json()["opt_out_keywords"] == ["لا أريد"]

    async def opted_out() -> bool:
        async with hub.client(organization.admin.token) as client:
            return bool((await client.get(f"/api/crm/customers/{person['id']}")).json()["opted_out"])

    # The opt-out is decided in the transaction that stores the message, before the post answers:
    # the defaults no longer apply, and the organization's word does.
    await api.send(external_id="k-1", **{"from": "+966506660001"}, text="STOP")
    assert not await opted_out()
    await api.send(external_id="k-2", **{"from": "+966506660001"}, text="لا اريد")
    assert await opted_out()
    await eventually(lambda: [m for m in receiver.messages if m.get("conversation_id")], within=10)
    await asyncio.sleep(0.5)
    assert len([m for m in receiver.messages if m.get("conversation_id")]) == 1  # one confirmation


async def test_an_image_campaign_and_no_same_text_twice_in_a_day(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    from tests.helpers.channels import tiny_png

    channel = await api_channel(hub, organization, receiver)
    people = await customers(
        hub,
        organization,
        [{"name": "Amir", "phone": "+966507770001"}, {"name": "Dana", "phone": "+966507770002"}],
    )
    admin = organization.admin.token
    await fast_pacing(hub, admin, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    async with hub.client(admin) as client:
        image = await client.post("/api/media", files={"data": ("offer.png", tiny_png(), "image/png")})
        assert image.status_code == 201, image.text
    body = {
        "name": "Picture",
        "channel_ids": [channel["id"]],
        "template": {"ar": "عرض اليوم"},
        "media_id": image.json()["id"],
        "audience": {"customer_ids": [people[0]["id"]]},
        "avoid_repeats": True,
    }
    await run_campaign(hub, admin, body)
    sent = receiver.messages[0]
    assert sent["kind"] == "image"
    assert sent["attachments"][0]["content_type"] == "image/png"
    # The same text again within a day, to Amir and to Dana: Amir is skipped, Dana gets it.
    second, done = await run_campaign(
        hub, admin, {**body, "media_id": None, "audience": {"customer_ids": [p["id"] for p in people]}}
    )
    assert (done["sent"], done["skipped"]) == (1, 1)
    async with hub.client(admin) as client:
        skipped = (
            await client.get(f"/api/campaigns/{second['id']}/recipients", params={"status": "skipped"})
        ).json()
    assert [(r["phone"], r["error"]) for r in skipped["items"]] == [("+966507770001", "repeat")]
    assert [m["to"] for m in receiver.messages] == ["+966507770001", "+966507770002"]


async def test_a_receipt_that_comes_before_the_send_is_answered_still_counts(
    hub: RunningHub, organization: Organization, receiver: CountingReceiver
) -> None:
    channel = await api_channel(hub, organization, receiver)
    receiver.receipts_to = (channel["receipts_url"], channel["secret"])
    people = await customers(
        hub, organization, [{"name": f"Quick {i}", "phone": f"+96650888000{i}"} for i in range(4)]
    )
    admin = organization.admin.token
    await fast_pacing(hub, admin, channel["id"], min_gap_seconds=0, jitter_seconds=0)
    campaign = await ready_campaign(
        hub,
        admin,
        {
            "name": "Fast network",
            "channel_ids": [channel["id"]],
            "template": {"ar": "مرحبا"},
            "audience": {"customer_ids": [p["id"] for p in people]},
        },
    )
    async with hub.client(admin) as client:
        assert (await client.post(f"/api/campaigns/{campaign['id']}/start")).status_code == 200
        await finished(hub, admin, campaign["id"])

        async def all_delivered() -> bool:
            results = (await client.get(f"/api/campaigns/{campaign['id']}/results")).json()
            return bool(results["counts"]["delivered"] == 4)

        await eventually(all_delivered, within=10)
