"""The channels' socket events, each by its contract: exactly who receives it (who manages the
organization's numbers: admins and managers), and its payload applied to the profile the console
had fetched, which must equal a fresh fetch.

WhatsApp's servers cannot be reached from here, so a profile's connection fails to dial, as it
really does offline. What WhatsApp would then say (a QR code, the phone paired, a log-out) is
handed to the profile's real neonize client the way its Go side hands it over: the QR as a C
string to the client's QR callback, events as serialized protobuf to `event.execute`. neonize
decodes them and the hub's session handles them as in production.
"""

from __future__ import annotations

import ctypes
import uuid
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.message import Message
from neonize.events import EVENT_TO_INT, ConnectedEv, LoggedOutEv
from neonize.proto.Neonize_pb2 import JID, Device

from channels.whatsapp.session import ProfileSession, qr_svg
from channels.whatsapp.sessions import sessions_of
from tests.conftest import add_member, capture_pushes, make_settings, register, start_hub

MANAGERS = {"admin", "manager"}
LOGGED_OUT = LoggedOutEv.DESCRIPTOR.fields_by_name["Reason"].enum_type.values_by_name["LOGGED_OUT"].number


def as_go_sends(session: ProfileSession, event: Message) -> None:
    """Hand neonize's client an event as its Go side does: serialized, by address and size."""
    assert session.client is not None
    data = event.SerializeToString()
    buffer = ctypes.create_string_buffer(data, len(data))
    session.client.event.execute(0, ctypes.addressof(buffer), len(data), EVENT_TO_INT[type(event)])


def qr_as_go_sends(session: ProfileSession, code: str) -> None:
    assert session.client is not None
    buffer = ctypes.create_string_buffer(code.encode())
    session.client._NewAClient__onQr(0, ctypes.addressof(buffer))  # type: ignore[attr-defined]  # the Go side's callback, name-mangled


async def profile_of(client: httpx.AsyncClient, profile_id: str) -> dict[str, Any]:
    answer = await client.get(f"/api/whatsapp/profiles/{profile_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def apply_to_profile(profile: dict[str, Any], event: str, data: dict[str, Any]) -> dict[str, Any]:
    """What the console's connect dialog does with each event."""
    if event == "qrCode":
        return {**profile, "state": "qr", "qr": {"code": data["code"], "svg": data["svg"]}}
    if event == "clientReady":
        return {**profile, "state": "ready", "qr": None, "phone": data["phone"], "paired": True}
    if event == "clientDisconnected":
        paired = profile["paired"] and data["reason"] != "logged_out"
        state = "logged_out" if data["reason"] == "logged_out" else "disconnected"
        return {**profile, "state": state, "qr": None, "paired": paired}
    return {**profile, "state": data["state"], "last_error": data["detail"]}


def same_but_when(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Equal, but for the moment the state changed (the events do not carry it)."""
    return {**left, "state_changed_at": None, "last_error": None} == {
        **right,
        "state_changed_at": None,
        "last_error": None,
    }


async def test_channel_state_qr_ready_and_disconnected(tmp_path: Path) -> None:
    # Long pauses between attempts: once its first dial fails, the session waits, and what it
    # shows next is only what the test hands it.
    settings = make_settings(
        tmp_path, HUB_WHATSAPP_RECONNECT_BASE_SECONDS="300", HUB_WHATSAPP_RECONNECT_MAX_SECONDS="300"
    )
    hub = await start_hub(settings, kind="sqlite")
    pushes = None
    try:
        organization = await register(hub)
        organization.members["admin"] = organization.admin
        for role in ("manager", "agent", "member"):
            await add_member(hub, organization, role)
        pushes = await capture_pushes(hub, organization)
        async with hub.client(organization.members["manager"].token) as manager:
            async with hub.client(organization.admin.token) as admin:
                profile = (await admin.post("/api/whatsapp/profiles", json={"name": "Sales line"})).json()
                shown = await profile_of(manager, profile["id"])
                connecting = await admin.post(
                    "/api/whatsapp/connect", json={"profile_id": profile["id"], "wait_seconds": 0}
                )
                assert connecting.status_code == 200, connecting.text

            # channelStateChanged: connecting, then the dial's failure with neonize's reason.
            dropped = await pushes.expect(
                "channelStateChanged", to=MANAGERS, where=lambda d: d["state"] == "disconnected"
            )
            assert dropped["profileId"] == profile["id"]
            assert "failed to dial" in dropped["detail"]
            connecting_event = next(
                d for d in pushes.sockets["admin"].named("channelStateChanged") if d["state"] == "connecting"
            )
            shown = apply_to_profile(shown, "channelStateChanged", connecting_event)
            shown = apply_to_profile(shown, "channelStateChanged", dropped)
            assert shown == {
                **await profile_of(manager, profile["id"]),
                "state_changed_at": shown["state_changed_at"],
            }
            shown = await profile_of(manager, profile["id"])

            running = sessions_of(hub.runtime).get(uuid.UUID(profile["id"]))
            assert running is not None

            # qrCode: a code to scan, and its picture.
            pushes.forget()
            qr_as_go_sends(running, "2@first-code,abc,def")
            data = await pushes.expect("qrCode", to=MANAGERS)
            assert data == {
                "profileId": profile["id"],
                "code": "2@first-code,abc,def",
                "svg": qr_svg("2@first-code,abc,def"),
            }
            shown = apply_to_profile(shown, "qrCode", data)
            assert same_but_when(shown, await profile_of(manager, profile["id"]))

            # clientReady: the phone scanned it; the account's number comes with it.
            pushes.forget()
            account = JID(User="966500000009", RawAgent=0, Device=0, Integrator=0, Server="s.whatsapp.net")
            as_go_sends(
                running,
                Device(JID=account, Platform="android", BussinessName="", PushName="Sales", Initialized=True),
            )
            as_go_sends(running, ConnectedEv(status=True))
            data = await pushes.expect("clientReady", to=MANAGERS)
            assert data == {"profileId": profile["id"], "phone": "+966500000009"}
            shown = apply_to_profile(shown, "clientReady", data)
            assert same_but_when(shown, await profile_of(manager, profile["id"]))

            # clientDisconnected: logged out from the phone; its keys are void.
            pushes.forget()
            as_go_sends(running, LoggedOutEv(OnConnect=False, Reason=LOGGED_OUT))
            data = await pushes.expect("clientDisconnected", to=MANAGERS)
            assert data == {"profileId": profile["id"], "reason": "logged_out"}
            shown = apply_to_profile(shown, "clientDisconnected", data)
            assert same_but_when(shown, await profile_of(manager, profile["id"]))
            assert not await running.keys.has(running.channel_id, {})
    finally:
        if pushes is not None:
            await pushes.close()
        await hub.stop()
