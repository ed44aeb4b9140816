"""The kernel's socket events by their contract: `sessionEnded` reaches the sockets of exactly the
login or person it concerns, and what the console does with it (ask for its session again) gives
the access they have now. (`resyncNeeded`, sent when a process lost Redis, has its contract test
with the faults: `test_sockets_are_told_when_their_process_lost_the_shared_channel`.)"""

from __future__ import annotations

from tests.conftest import Organization, RunningHub, eventually
from tests.helpers.pushes import CapturedPushes


async def test_session_ended(
    hub: RunningHub, organization: Organization, captured_pushes: CapturedPushes
) -> None:
    manager = organization.members["manager"]
    async with hub.client(manager.token) as own:
        assert (await own.get("/api/auth/me")).json()["user"]["role"] == "manager"
        async with hub.client(organization.admin.token) as admin:
            changed = await admin.patch(f"/api/users/{manager.user_id}/role", json={"role": "member"})
            assert changed.status_code == 200, changed.text
        data = await captured_pushes.expect("sessionEnded", to={"manager"})
        assert data == {"reason": "role_changed"}
        await eventually(lambda: not captured_pushes.sockets["manager"].client.connected)
        # The console asks again who it is, with the same login: the new role.
        assert (await own.get("/api/auth/me")).json()["user"]["role"] == "member"
