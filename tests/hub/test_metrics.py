"""/metrics: Prometheus text behind a bearer token, counting what the process does and reading
what the shared stores hold."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import METRICS_TOKEN, Organization, RunningHub, eventually, make_settings, start_hub
from tests.helpers.channels import make_channel, webhook_receiver
from tests.helpers.sockets import connect


async def scrape(hub: RunningHub) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with hub.client() as client:
        answer = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_need_the_token(hub: RunningHub) -> None:
    async with hub.client() as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        assert METRICS_TOKEN not in wrong.text


async def test_without_a_token_there_are_no_metrics(tmp_path: Path) -> None:
    hub = await start_hub(make_settings(tmp_path, HUB_METRICS_TOKEN=""), kind="sqlite")
    try:
        async with hub.client() as client:
            assert (await client.get("/metrics")).status_code == 404
    finally:
        await hub.stop()


async def test_metrics_count_posts_emits_and_sockets(hub: RunningHub, organization: Organization) -> None:
    before = await scrape(hub)
    for name in (
        "hub_event_loop_lag_seconds",
        "hub_socket_fanout_backlog",
        "hub_outbox_backlog",
        "hub_outbox_oldest_seconds",
        "hub_database_connections",
    ):
        assert any(key[0] == name for key in before), name
    assert value(before, "hub_database_connections", state="size") >= 1
    assert value(before, "hub_whatsapp_sessions", state="ready") >= 0
    if hub.kind == "postgres":  # the task queue lives in Redis
        assert ("hub_task_queue_depth", (("state", "waiting"),)) in before

    agent_socket = await connect(hub, organization.admin.token)
    try:
        async with webhook_receiver() as receiver:
            channel = await make_channel(hub, organization, receiver)
            for number in range(3):
                sent = await channel.send(external_id=f"m-{number}", **{"from": "+966561230071"}, text="hi")
                assert sent.status_code == 202, sent.text
            async with hub.client() as client:
                unsigned = await client.post(channel.inbound_url, json={"from": "+966561230071", "text": "x"})
            assert unsigned.status_code == 401

        async def counted() -> bool:
            after = await scrape(hub)
            return (
                value(after, "hub_inbound_to_emit_seconds_count")
                >= value(before, "hub_inbound_to_emit_seconds_count") + 3
            )

        await eventually(counted)
        after = await scrape(hub)
        accepted = ("hub_inbound_posts_total", dict(kind="message", result="accepted"))
        rejected = ("hub_inbound_posts_total", dict(kind="message", result="rejected"))
        assert value(after, accepted[0], **accepted[1]) == value(before, accepted[0], **accepted[1]) + 3
        assert value(after, rejected[0], **rejected[1]) == value(before, rejected[0], **rejected[1]) + 1
        assert value(after, "hub_sockets") >= 1
    finally:
        await agent_socket.client.disconnect()
