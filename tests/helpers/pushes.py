"""Socket events as the people of an organization receive them, over real sockets.

`CapturedPushes` connects one socket for each person (every role, a second agent, and an admin of
another organization) and answers, for an event, exactly who received it. Each socket event's
contract test (`pushes.expect("newMessage", to={...})`) runs the action, checks the payload
against the event's struct and its recipients, then applies it to what the console had fetched
and compares with a fresh fetch; `tests/hub/test_socket_contract.py` fails when an event has no
such test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import socketio

from hub.realtime import declared_socket_events
from tests.helpers.sockets import SocketEvents, connect

if TYPE_CHECKING:
    from tests.conftest import Member, RunningHub

# The labels of the people `captured_pushes` connects.
EVERYONE = frozenset({"admin", "manager", "member", "agent", "agent_b", "stranger"})


@dataclass
class CapturedPushes:
    hub: RunningHub
    people: dict[str, Member]
    sockets: dict[str, SocketEvents] = field(default_factory=dict)

    async def connect(self) -> None:
        for label, member in self.people.items():
            self.sockets[label] = await connect(self.hub, member.token)

    async def close(self) -> None:
        for events in self.sockets.values():
            if events.client.connected:
                await events.client.disconnect()

    def forget(self) -> None:
        """Start afresh: what was received so far is dropped."""
        for events in self.sockets.values():
            events.received.clear()

    async def caught_up(self) -> None:
        """Every socket has received whatever the hub had sent it before now: a round trip on each
        one (its answer travels behind anything already on its way). A socket the hub closes
        meanwhile has received all it will."""
        await asyncio.gather(*(self._round_trip(events) for events in self.sockets.values()))

    @staticmethod
    async def _round_trip(events: SocketEvents) -> None:
        if not events.client.connected:
            return
        answer = asyncio.ensure_future(events.client.call("markAsRead", "not-an-id", timeout=10))
        while not answer.done():
            if not events.client.connected:
                answer.cancel()
                return
            await asyncio.sleep(0.02)
        try:
            answer.result()
        except socketio.exceptions.SocketIOError:
            if events.client.connected:
                raise

    def received_by(self, event: str, where: Callable[[Any], bool]) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for label, events in self.sockets.items():
            payloads = [payload for payload in events.named(event) if where(payload)]
            if payloads:
                found[label] = payloads
        return found

    async def expect(
        self,
        event: str,
        *,
        to: set[str] | frozenset[str],
        where: Callable[[Any], bool] = lambda _payload: True,
        within: float = 15.0,
    ) -> Any:
        """Wait until everyone in `to` has received `event` (matching `where`), then check nobody
        else has, that each payload reads as the declared struct, and that all received the same
        payload (the latest matching one, which is returned)."""
        assert event in declared_socket_events(), f"{event} is not a declared socket event"
        assert to <= self.sockets.keys(), to
        deadline = asyncio.get_running_loop().time() + within
        while not to <= self.received_by(event, where).keys():
            if asyncio.get_running_loop().time() > deadline:
                seen = {
                    label: [name for name, _ in events.received] for label, events in self.sockets.items()
                }
                raise AssertionError(
                    f"{event}: expected by {sorted(to)}, received by {sorted(self.received_by(event, where))};"
                    f" all received: {seen}"
                )
            await asyncio.sleep(0.02)
        await self.caught_up()
        found = self.received_by(event, where)
        assert found.keys() == to, f"{event}: expected by {sorted(to)}, received by {sorted(found)}"
        # One encode for everyone: each recipient's latest is the same payload.
        latest = [found[label][-1] for label in sorted(found)]
        assert all(payload == latest[0] for payload in latest), latest
        return latest[0]

    async def expect_none(self, event: str, where: Callable[[Any], bool] = lambda _payload: True) -> None:
        """Nobody has received `event` (matching `where`) by now."""
        await self.caught_up()
        assert self.received_by(event, where) == {}
