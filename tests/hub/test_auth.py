"""Accounts end to end: register, login, logout, invitations, password reset, bad input."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from argon2 import PasswordHasher
from sqlalchemy import func, select

from hub.config import Settings, SettingsError
from hub.models import Invitation, Organization, User
from hub.runtime import bind, unbind
from hub.security import hash_password, verify_password
from tests.conftest import (
    PASSWORD,
    Mailbox,
    RunningHub,
    add_member,
    eventually,
    hub_with_mailbox,
    register,
    unique_email,
)


async def test_register_answers_the_session_shape(hub: RunningHub) -> None:
    email = unique_email()
    async with hub.client() as client:
        response = await client.post(
            "/api/auth/register",
            json={
                "organization_name": "شركة النور",
                "full_name": "Nour",
                "email": email.upper(),
                "password": PASSWORD,
            },
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"]
    assert body["user"]["email"] == email  # stored lower-case
    assert body["user"]["role"] == "admin"
    assert "password" not in response.text
    assert "password_hash" not in response.text
    organization = body["organization"]
    assert set(organization) == {"id", "name", "slug", "default_language", "time_zone", "default_region"}
    assert organization["default_language"] == "ar"
    assert organization["name"] == "شركة النور"
    assert re.fullmatch(r"org-[0-9a-f]{6}", organization["slug"])  # an Arabic name gets a neutral slug


async def test_registration_language_becomes_the_default(hub: RunningHub) -> None:
    organization = await register(hub, language="en", name="English Co")
    async with hub.client(organization.admin.token) as client:
        settings = (await client.get("/api/settings/organization")).json()
        assert settings["default_language"] == "en"
        assert settings["slug"].startswith("english-co")
        # No Accept-Language: the user's preference (en) chooses the language of errors.
        missing = await client.delete(f"/api/users/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Not found."


async def test_duplicate_email_is_409_and_writes_nothing(hub: RunningHub) -> None:
    organization = await register(hub)
    async with hub.runtime.db.system_session() as session:
        before = await session.scalar(select(func.count()).select_from(Organization))
    async with hub.client(language="en") as client:
        response = await client.post(
            "/api/auth/register",
            json={
                "organization_name": "Again",
                "full_name": "X",
                "email": organization.admin.email,
                "password": PASSWORD,
            },
        )
    assert response.status_code == 409
    assert response.json()["errors"] == [
        {"field": "email", "message": "An account with this e-mail already exists."}
    ]
    async with hub.runtime.db.system_session() as session:
        assert await session.scalar(select(func.count()).select_from(Organization)) == before


@pytest.mark.parametrize(
    ("body", "field", "english"),
    [
        (
            {"full_name": "A", "email": "a@b.example", "password": PASSWORD},
            "organization_name",
            "This field is required.",
        ),
        (
            {"organization_name": "O", "full_name": "A", "email": "not-an-email", "password": PASSWORD},
            "email",
            "The format is not valid.",
        ),
        (
            {"organization_name": "O", "full_name": "A", "email": "a@b.example", "password": "short"},
            "password",
            "The password must be at least 10 characters long.",
        ),
        (
            {"organization_name": "O", "full_name": "A", "email": "a@b.example", "password": "1234567890123"},
            "password",
            "The password must not be only digits.",
        ),
        (
            {"organization_name": "O", "full_name": "A", "email": "a@b.example", "password": "password123"},
            "password",
            "The password is too easy to guess.",
        ),
        (
            {"organization_name": "O" * 201, "full_name": "A", "email": "a@b.example", "password": PASSWORD},
            "organization_name",
            "Must be at most 200 characters long.",
        ),
        (
            {"organization_name": 5, "full_name": "A", "email": "a@b.example", "password": PASSWORD},
            "organization_name",
            "This value has the wrong type.",
        ),
        (
            {
                "organization_name": "O",
                "full_name": "A",
                "email": "a@b.example",
                "password": PASSWORD,
                "admin": True,
            },
            "admin",
            "This field is not accepted.",
        ),
        (
            {
                "organization_name": "O",
                "full_name": "A",
                "email": "a@b.example",
                "password": PASSWORD,
                "language": "fr",
            },
            "language",
            "This is not one of the allowed values.",
        ),
    ],
)
async def test_bad_registration_names_the_field(
    hub: RunningHub, body: dict[str, Any], field: str, english: str
) -> None:
    async with hub.client(language="en") as client:
        response = await client.post("/api/auth/register", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0] == {"field": field, "message": english}


async def test_errors_are_in_arabic_by_default(hub: RunningHub) -> None:
    async with hub.client() as client:
        response = await client.post(
            "/api/auth/register",
            json={"organization_name": "O", "full_name": "A", "email": "a@b.example", "password": "short"},
        )
        malformed = await client.post(
            "/api/auth/login", content=b'{"email": ', headers={"content-type": "application/json"}
        )
    assert response.json() == {
        "status_code": 400,
        "detail": "يجب ألا تقل كلمة المرور عن 10 أحرف.",
        "errors": [{"field": "password", "message": "يجب ألا تقل كلمة المرور عن 10 أحرف."}],
    }
    assert malformed.status_code == 400
    assert malformed.json()["detail"] == "محتوى الطلب ليس بصيغة JSON صالحة."


async def test_login_and_logout_revokes_the_token_at_once(hub: RunningHub) -> None:
    organization = await register(hub)
    async with hub.client() as client:
        wrong = await client.post(
            "/api/auth/login", json={"email": organization.admin.email, "password": "wrong password!"}
        )
        assert wrong.status_code == 401
        unknown = await client.post("/api/auth/login", json={"email": unique_email(), "password": PASSWORD})
        assert unknown.status_code == 401
        assert unknown.json()["detail"] == wrong.json()["detail"]  # no account enumeration
        response = await client.post(
            "/api/auth/login", json={"email": organization.admin.email, "password": PASSWORD}
        )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_at",
        "user",
        "organization",
        "permissions",
        "billing",
        "ai",
    }
    assert set(body["permissions"].values()) == {"write"}  # an admin may do everything
    token = body["access_token"]
    async with hub.client(token) as client:
        assert (await client.get("/api/auth/me")).status_code == 200
        assert (await client.post("/api/auth/logout")).status_code == 204
        assert (await client.get("/api/auth/me")).status_code == 401
    # The other login of the same person is still valid.
    async with hub.client(organization.admin.token) as client:
        assert (await client.get("/api/auth/me")).status_code == 200


async def test_tampered_and_foreign_tokens_are_refused(hub: RunningHub) -> None:
    organization = await register(hub)
    header, payload, signature = organization.admin.token.split(".")
    for bad in (f"{header}.{payload}.{signature[:-2]}xx", "not-a-token", ""):
        async with hub.client(bad or None) as client:
            assert (await client.get("/api/auth/me")).status_code == 401


async def test_invitation_flow(hub: RunningHub) -> None:
    organization = await register(hub)
    agent = await add_member(hub, organization, "agent")
    async with hub.client(agent.token) as client:
        me = (await client.get("/api/users/me")).json()
    assert me["role"] == "agent"
    async with hub.client(organization.admin.token) as client:
        users = (await client.get("/api/users")).json()
        assert {u["email"] for u in users["items"]} == {organization.admin.email, agent.email}
        again = await client.post("/api/users/invite", json={"email": agent.email, "role": "agent"})
        assert again.status_code == 409
        invited = await client.post("/api/users/invite", json={"email": unique_email(), "role": "manager"})
    link = invited.json()["invitation_url"]
    assert link.startswith(hub.url + "/accept-invitation?token=")
    token = link.split("token=")[1]
    async with hub.client() as client:
        weak = await client.post(
            "/api/auth/accept-invitation", json={"token": token, "full_name": "M", "password": "x"}
        )
        assert weak.status_code == 400
        accepted = await client.post(
            "/api/auth/accept-invitation",
            json={"token": token, "full_name": "Mona", "password": PASSWORD, "language": "en"},
        )
        assert accepted.status_code == 200
        assert accepted.json()["user"]["role"] == "manager"
        assert accepted.json()["user"]["preferred_language"] == "en"
        reused = await client.post(
            "/api/auth/accept-invitation", json={"token": token, "full_name": "Mona", "password": PASSWORD}
        )
        assert reused.status_code == 400
        assert reused.json()["errors"][0]["field"] == "token"
    # The database keeps only a digest of the invitation token.
    async with hub.runtime.db.session(organization.id) as session:
        digests = list(await session.scalars(select(Invitation.token_digest)))
    assert token not in digests
    assert len(digests) == 2


async def test_pending_invitations_are_listed_and_can_be_revoked(hub: RunningHub) -> None:
    organization = await register(hub)
    manager = await add_member(hub, organization, "manager")
    other = await register(hub, name="Other Co")
    first_email, second_email = unique_email("first"), unique_email("second")
    async with hub.client(organization.admin.token) as client:
        first = (await client.post("/api/users/invite", json={"email": first_email, "role": "agent"})).json()
        second = (
            await client.post("/api/users/invite", json={"email": second_email, "role": "member"})
        ).json()
        listed = (await client.get("/api/users/invitations")).json()
    # Newest first; what was accepted (the manager's) is gone; no link or token is shown again.
    assert [item["email"] for item in listed["items"]] == [second_email, first_email]
    assert listed["items"][1]["role"] == "agent"
    assert listed["items"][1]["invited_by_id"] == str(organization.admin.user_id)
    assert set(listed["items"][0]) == {"id", "email", "role", "invited_by_id", "created_at", "expires_at"}
    async with hub.client(manager.token) as client:
        assert len((await client.get("/api/users/invitations")).json()["items"]) == 2  # managers read users
        assert (await client.delete(f"/api/users/invitations/{first['id']}")).status_code == 403
    async with hub.client(other.admin.token) as client:
        assert (await client.get("/api/users/invitations")).json()["items"] == []
        assert (await client.delete(f"/api/users/invitations/{first['id']}")).status_code == 404
    async with hub.client(organization.admin.token) as client:
        assert (await client.delete(f"/api/users/invitations/{first['id']}")).status_code == 204
        assert (await client.delete(f"/api/users/invitations/{first['id']}")).status_code == 404
        remaining = (await client.get("/api/users/invitations")).json()["items"]
        audit = (await client.get("/api/audit")).json()["items"]
    assert [item["id"] for item in remaining] == [second["id"]]
    assert any(entry["action"] == "invitation.revoked" for entry in audit)
    token = first["invitation_url"].split("token=")[1]
    async with hub.client() as client:
        revoked = await client.post(
            "/api/auth/accept-invitation", json={"token": token, "full_name": "Late", "password": PASSWORD}
        )
    assert revoked.status_code == 400
    assert revoked.json()["errors"][0]["field"] == "token"


async def test_roles_cannot_lose_the_last_admin(hub: RunningHub) -> None:
    organization = await register(hub)
    manager = await add_member(hub, organization, "manager")
    admin = organization.admin
    async with hub.client(admin.token, language="en") as client:
        demote = await client.patch(f"/api/users/{admin.user_id}/role", json={"role": "manager"})
        assert demote.status_code == 409
        assert demote.json()["detail"] == "The organization must keep at least one admin."
        remove = await client.delete(f"/api/users/{admin.user_id}")
        assert remove.status_code == 409
        bad_role = await client.patch(f"/api/users/{manager.user_id}/role", json={"role": "owner"})
        assert bad_role.status_code == 400
        assert bad_role.json()["errors"][0]["field"] == "role"
        promote = await client.patch(f"/api/users/{manager.user_id}/role", json={"role": "admin"})
        assert promote.status_code == 200
        # With a second admin, the first may step down.
        assert (
            await client.patch(f"/api/users/{admin.user_id}/role", json={"role": "manager"})
        ).status_code == 200
    async with hub.client(manager.token) as client:
        removed = await client.delete(f"/api/users/{admin.user_id}")
        assert removed.status_code == 204
        assert (await client.delete(f"/api/users/{admin.user_id}")).status_code == 404
    async with hub.client(admin.token) as client:
        assert (await client.get("/api/auth/me")).status_code == 401  # a removed user's token stops working
    async with hub.client() as client:
        relogin = await client.post("/api/auth/login", json={"email": admin.email, "password": PASSWORD})
        assert relogin.status_code == 401


async def test_profile_language_preference(hub: RunningHub) -> None:
    organization = await register(hub)
    async with hub.client(organization.admin.token) as client:
        arabic = await client.delete(f"/api/users/{uuid.uuid4()}")
        assert arabic.json()["detail"] == "غير موجود."
        updated = await client.patch(
            "/api/users/me", json={"preferred_language": "en", "full_name": "Amal A."}
        )
        assert updated.status_code == 200
        assert updated.json()["preferred_language"] == "en"
        english = await client.delete(f"/api/users/{uuid.uuid4()}")
        assert english.json()["detail"] == "Not found."
        # The preference wins over the browser's language.
        client.headers["Accept-Language"] = "ar"
        assert (await client.delete(f"/api/users/{uuid.uuid4()}")).json()["detail"] == "Not found."
        cleared = await client.patch("/api/users/me", json={"preferred_language": None})
        assert cleared.json()["preferred_language"] is None
        assert (await client.delete(f"/api/users/{uuid.uuid4()}")).json()["detail"] == "غير موجود."


@pytest.fixture
async def smtp_hub(tmp_path: Any) -> AsyncIterator[tuple[RunningHub, Mailbox]]:
    async with hub_with_mailbox(tmp_path, HUB_PUBLIC_URL="https://hub.example.test") as running:
        yield running


async def test_password_reset_by_email(smtp_hub: tuple[RunningHub, Mailbox]) -> None:
    hub, mailbox = smtp_hub
    organization = await register(hub)
    async with hub.client(language="en") as client:
        unknown = await client.post("/api/auth/forgot-password", json={"email": unique_email()})
        known = await client.post("/api/auth/forgot-password", json={"email": organization.admin.email})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()  # the answer never tells whether the account exists
    await eventually(lambda: mailbox.messages)
    await asyncio.sleep(0.2)
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert message["To"] == organization.admin.email
    assert message["Subject"] == "إعادة تعيين كلمة المرور"  # the organization speaks Arabic
    body = message.get_payload(decode=True).decode()
    link = re.search(r"https://hub\.example\.test/reset-password\?token=(\S+)", body)
    assert link, body
    token = link.group(1)
    new_password = "Another long passphrase 7"
    async with hub.client(language="en") as client:
        weak = await client.post("/api/auth/reset-password", json={"token": token, "password": "abc"})
        assert weak.status_code == 400
        done = await client.post("/api/auth/reset-password", json={"token": token, "password": new_password})
        assert done.status_code == 204
        again = await client.post("/api/auth/reset-password", json={"token": token, "password": new_password})
        assert again.status_code == 400
        assert again.json()["errors"][0]["field"] == "token"
        old = await client.post(
            "/api/auth/login", json={"email": organization.admin.email, "password": PASSWORD}
        )
        assert old.status_code == 401
        new = await client.post(
            "/api/auth/login", json={"email": organization.admin.email, "password": new_password}
        )
        assert new.status_code == 200


async def test_a_new_password_ends_every_session_and_only_the_newest_link_works(
    smtp_hub: tuple[RunningHub, Mailbox],
) -> None:
    hub, mailbox = smtp_hub
    organization = await register(hub)
    email = organization.admin.email
    async with hub.client(language="en") as client:
        elsewhere = (await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})).json()
    sockets = [await hub.socket(organization.admin.token), await hub.socket(elsewhere["access_token"])]
    ended: list[Any] = []
    for socket in sockets:
        socket.on("sessionEnded", ended.append)
    async with hub.client(language="en") as client:
        # One at a time: each link is e-mailed by its own task, so two at once may arrive swapped.
        for count in (1, 2):
            await client.post("/api/auth/forgot-password", json={"email": email})
            await eventually(
                lambda count=count: len([m for m in mailbox.messages if m["To"] == email]) == count
            )
    first, newest = (
        re.search(r"token=(\S+)", m.get_payload(decode=True).decode()).group(1)  # type: ignore[union-attr]
        for m in mailbox.messages
        if m["To"] == email
    )
    new_password = "Another long passphrase 8"
    async with hub.client(language="en") as client:
        stale = await client.post("/api/auth/reset-password", json={"token": first, "password": new_password})
        assert stale.status_code == 400  # a later link was sent: this one is spent
        done = await client.post("/api/auth/reset-password", json={"token": newest, "password": new_password})
        assert done.status_code == 204
    for token in (organization.admin.token, elsewhere["access_token"]):
        async with hub.client(token) as client:
            assert (await client.get("/api/users/me")).status_code == 401
    await eventually(lambda: len(ended) == 2 and not any(s.connected for s in sockets))
    assert {e["reason"] for e in ended} == {"password_changed"}
    with pytest.raises(socketio.exceptions.ConnectionError):
        await hub.socket(organization.admin.token)


async def test_changing_ones_password_ends_the_other_sessions(hub: RunningHub) -> None:
    organization = await register(hub)
    email = organization.admin.email
    async with hub.client(language="en") as client:
        other = (await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})).json()
    socket = await hub.socket(other["access_token"])
    new_password = "A changed passphrase 99"
    async with hub.client(organization.admin.token, language="en") as client:
        wrong = await client.post(
            "/api/users/me/password", json={"current_password": "not it at all", "password": new_password}
        )
        assert wrong.status_code == 400
        assert wrong.json()["errors"][0]["field"] == "current_password"
        weak = await client.post(
            "/api/users/me/password", json={"current_password": PASSWORD, "password": "short"}
        )
        assert weak.json()["errors"][0]["field"] == "password"
        changed = await client.post(
            "/api/users/me/password", json={"current_password": PASSWORD, "password": new_password}
        )
        assert changed.status_code == 200, changed.text
        fresh = changed.json()["access_token"]
        assert (await client.get("/api/users/me")).status_code == 401  # this token too is over
    for token, status in ((other["access_token"], 401), (fresh, 200)):
        async with hub.client(token) as client:
            assert (await client.get("/api/users/me")).status_code == status
    await eventually(lambda: not socket.connected)
    async with hub.client() as client:
        assert (
            await client.post("/api/auth/login", json={"email": email, "password": new_password})
        ).status_code == 200


async def test_invitation_is_emailed_when_smtp_is_configured(smtp_hub: tuple[RunningHub, Mailbox]) -> None:
    hub, mailbox = smtp_hub
    organization = await register(hub, language="en")
    email = unique_email("invitee")
    async with hub.client(organization.admin.token) as client:
        invited = await client.post("/api/users/invite", json={"email": email, "role": "agent"})
    assert invited.status_code == 201
    message = (await eventually(lambda: [m for m in mailbox.messages if m["To"] == email]))[0]
    assert message["Subject"] == "You are invited to join Acme Trading"
    assert invited.json()["invitation_url"].startswith("https://hub.example.test/accept-invitation?token=")
    assert invited.json()["invitation_url"] in message.get_payload(decode=True).decode()


async def test_reset_link_goes_to_the_log_without_smtp(
    hub: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    organization = await register(hub)
    with caplog.at_level("WARNING"):
        async with hub.client() as client:
            assert (
                await client.post("/api/auth/forgot-password", json={"email": organization.admin.email})
            ).status_code == 202
        await eventually(lambda: "reset-password?token=" in caplog.text)
    # The log carries the link (there is no other way to deliver it), never the password hash.
    async with hub.runtime.db.session(organization.id) as session:
        user = await session.scalar(select(User).where(User.email == organization.admin.email))
    assert user is not None
    assert user.password_hash not in caplog.text


async def test_passwords_are_hashed_at_the_configured_cost(hub: RunningHub, tmp_path: Path) -> None:
    """Production hashes with Argon2id at t=3 and 64 MiB unless told otherwise; the suite's hubs
    are told a cheaper cost, and each hash keeps the cost it was made with, so both verify."""
    defaults = Settings.from_env(
        {"HUB_DATA_DIR": str(tmp_path), "HUB_SECRET_KEY": "k" * 40}, read_dotenv=False
    )
    assert (defaults.password_time_cost, defaults.password_memory_kib) == (3, 65536)
    # A hash made at the production cost (before a deployment lowered it, say) still verifies.
    strong = PasswordHasher(time_cost=3, memory_cost=65536).hash("a long passphrase")
    with pytest.raises(SettingsError, match="HUB_PASSWORD_MEMORY_KIB"):
        Settings.from_env({"HUB_DATA_DIR": str(tmp_path), "HUB_PASSWORD_MEMORY_KIB": "16"}, read_dotenv=False)
    token = bind(hub.runtime)
    try:
        cheap = await hash_password("a long passphrase")
        assert f"m={hub.settings.password_memory_kib},t={hub.settings.password_time_cost}" in cheap
        assert await verify_password(strong, "a long passphrase")
        assert not await verify_password(cheap, "another passphrase")
    finally:
        unbind(token)
