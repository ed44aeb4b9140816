"""The statements of the inbound path find their rows by index, never by reading every row of the
organization: a first contact once counted every agent's conversations by walking all of the
organization's, which grew with each new customer."""

from __future__ import annotations

import re
from typing import Any

import pytest
import structlog
from sqlalchemy import event

from tests.conftest import Organization, RunningHub, add_member
from tests.helpers.channels import Receiver, make_channel
from tests.helpers.sockets import connect

# A plan line that reads a whole table, or all of an organization's rows through its own index.
WHOLE = re.compile(r"^SCAN \w+|USING (COVERING )?INDEX ix_\w+_organization_id \(organization_id=\?\)")


@pytest.mark.parametrize("hub", ["sqlite"], indirect=True)
async def test_first_and_later_messages_read_by_index(
    hub: RunningHub, organization: Organization, receiver: Receiver
) -> None:
    channel = await make_channel(hub, organization, receiver)
    agents = [organization.members["agent"], await add_member(hub, organization, "agent")]
    screens = [await connect(hub, agent.token) for agent in agents]
    async with hub.client(organization.admin.token) as client:
        await client.patch("/api/inbox/settings", json={"auto_assign": True, "agent_cap": 5})
        await client.post("/api/inbox/labels", json={"name": "vip", "color": "#aa0000"})
        # Other customers' conversations and labels, so a plan that walks them all would show.
        for n in range(3):
            other = (
                await channel.send(external_id=f"o-{n}", **{"from": f"+9665300000{n}"}, text="hi")
            ).json()
            labelled = await client.post(
                f"/api/inbox/conversations/{other['conversation_id']}/labels", json={"labels": ["vip"]}
            )
            assert labelled.status_code == 200

    ran: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        # A request's own statements (the hub's sweeps run beside it, with no request id bound).
        if "request_id" in structlog.contextvars.get_contextvars():
            ran.append((statement, parameters))

    engine = hub.runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", keep)
    try:
        first = await channel.send(external_id="plan-1", **{"from": "+966531234567"}, text="hello")
        later = await channel.send(external_id="plan-2", **{"from": "+966531234567"}, text="again")
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    assert first.status_code == later.status_code == 202
    assert any("INSERT INTO conversations" in statement for statement, _ in ran)
    assert any("FROM users" in statement for statement, _ in ran)  # the assignment in turn ran

    walked = []
    async with hub.runtime.db.engine.connect() as connection:
        # Without the child look-ups a new parent row's plan lists: SQLite runs them only while a
        # deferred foreign-key violation is outstanding.
        await connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        for statement, parameters in ran:
            plan = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            walked += [(statement, row[-1]) for row in plan if WHOLE.search(row[-1])]
    assert walked == []
    for screen in screens:
        await screen.client.disconnect()
