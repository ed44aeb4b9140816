"""HTTP for the kernel: translate the request, call a service, translate the answer."""

from __future__ import annotations

import asyncio
import hmac
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import quote

import structlog
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from sqlalchemy import select

from hub import ai, asyncapi, metrics, services, storage
from hub.auth import CurrentUser
from hub.billing.services.limits import require_storage
from hub.db import HubAsyncSession, utcnow
from hub.errors import InvalidInput, NotAuthenticated, NotFound, request_language
from hub.i18n import N_, translate
from hub.models import Invitation, Media, ModuleSetting, Organization, User
from hub.pagination import DEFAULT_LIMIT, paginate
from hub.permissions import permissions_of, requires
from hub.runtime import Runtime, runtime_of
from hub.schemas import (
    AcceptedOut,
    AcceptInvitationRequest,
    AISettingsIn,
    AISettingsOut,
    AuditEntryOut,
    CheckOut,
    ForgotPasswordRequest,
    HealthOut,
    InvitationOut,
    InviteRequest,
    LoginRequest,
    MediaOut,
    ModuleSettings,
    OrganizationOut,
    OrganizationUpdate,
    Page,
    PasswordChangeRequest,
    PendingInvitationOut,
    ProfileUpdate,
    RegisterRequest,
    ResetPasswordRequest,
    RoleChangeRequest,
    SessionOut,
    UsageOut,
    UserOut,
)
from hub.services.ai_settings import ai_settings_of, remove_ai_settings, save_ai_settings
from hub.throttle import client_address
from hub.views import organization_out, session_out, user_out

log = structlog.get_logger(__name__)

RuntimeDep = NamedDependency[Runtime]
SessionDep = NamedDependency[HubAsyncSession]
Cursor = Annotated[str | None, QueryParameter(max_length=64)]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]


def public_url(request: Request[Any, Any, Any]) -> str:
    """The hub's address for links: always the configured one, never the request's Host header."""
    return runtime_of(request).settings.public_url or ""


def provide_runtime(request: Request[Any, Any, Any]) -> Runtime:
    return runtime_of(request)


async def provide_session(request: Request[CurrentUser, Any, Any]) -> AsyncIterator[HubAsyncSession]:
    """The caller's tenant session; what is not committed by the service is rolled back."""
    async with runtime_of(request).db.session(request.user.organization_id) as session:
        yield session


DEPENDENCIES = {
    "runtime": Provide(provide_runtime, sync_to_thread=False),
    "session": Provide(provide_session),
}


async def switched_off_modules(session: HubAsyncSession) -> set[str]:
    return set(
        (await session.scalars(select(ModuleSetting.module).where(ModuleSetting.enabled.is_(False)))).all()
    )


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]  # noqa: RUF012

    @post("/register", exclude_from_auth=True, status_code=201)
    async def register(self, runtime: RuntimeDep, data: JSONBody[RegisterRequest]) -> SessionOut:
        signed_in = await services.create_organization(
            runtime,
            organization_name=data.organization_name,
            full_name=data.full_name,
            email=data.email,
            password=data.password,
            language=data.language,
        )
        return await session_out(signed_in)

    @post("/login", exclude_from_auth=True, status_code=HTTP_200_OK, errors=(401,))
    async def login(
        self, request: Request[Any, Any, Any], runtime: RuntimeDep, data: JSONBody[LoginRequest]
    ) -> SessionOut:
        signed_in = await services.login(
            runtime, email=data.email, password=data.password, address=client_address(request)
        )
        return await session_out(signed_in)

    @post("/logout", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, request: Request[CurrentUser, Any, Any], runtime: RuntimeDep) -> None:
        await services.logout(runtime, request.user)

    @post("/forgot-password", exclude_from_auth=True, status_code=HTTP_202_ACCEPTED)
    async def forgot_password(
        self, request: Request[Any, Any, Any], runtime: RuntimeDep, data: JSONBody[ForgotPasswordRequest]
    ) -> AcceptedOut:
        await services.request_password_reset(
            runtime, email=data.email, address=client_address(request), base_url=public_url(request)
        )
        return AcceptedOut(
            detail=translate(
                request_language(request),
                N_("If an account uses this e-mail, a link to reset its password is on its way."),
            )
        )

    @post("/reset-password", exclude_from_auth=True, status_code=HTTP_204_NO_CONTENT)
    async def reset_password(self, runtime: RuntimeDep, data: JSONBody[ResetPasswordRequest]) -> None:
        await services.reset_password(runtime, token=data.token, password=data.password)

    @post("/accept-invitation", exclude_from_auth=True, status_code=HTTP_200_OK)
    async def accept_invitation(
        self, runtime: RuntimeDep, data: JSONBody[AcceptInvitationRequest]
    ) -> SessionOut:
        signed_in = await services.accept_invitation(
            runtime,
            token=data.token,
            full_name=data.full_name,
            password=data.password,
            language=data.language,
        )
        return await session_out(signed_in)

    @get("/me")
    async def me(self, request: Request[CurrentUser, Any, Any], session: SessionDep) -> SessionOut:
        user = await session.get_one(User, request.user.id)
        organization = await session.get_one(Organization, request.user.organization_id)
        off = await switched_off_modules(session)
        return SessionOut(
            access_token=request.auth,
            token_type="bearer",
            expires_at=request.user.token_expires_at,
            user=user_out(user),
            organization=organization_out(organization),
            permissions=permissions_of(user.role, off),
            billing=bool(runtime_of(request).settings.stripe_secret_key),
            ai="ai" not in off and await ai.endpoint_for(runtime_of(request), session) is not None,
        )


class UserController(Controller):
    path = "/api/users"
    tags = ["users"]  # noqa: RUF012

    @get("/", guards=[requires("users", "read")])
    async def list_users(
        self, session: SessionDep, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> Page[UserOut]:
        users, next_cursor = await services.list_users(session, cursor=cursor, limit=limit)
        return Page(items=[user_out(u) for u in users], next_cursor=next_cursor)

    @post("/invite", guards=[requires("users", "write")], status_code=201, errors=(402,))
    async def invite(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: JSONBody[InviteRequest],
    ) -> InvitationOut:
        invitation, link = await services.invite_user(
            runtime,
            session,
            request.user,
            email=data.email,
            role=data.role,
            language=request.user.organization_language,
            base_url=public_url(request),
        )
        return InvitationOut(
            id=invitation.id,
            email=invitation.email,
            role=invitation.role,
            expires_at=invitation.expires_at,
            invitation_url=link,
        )

    @get("/invitations", guards=[requires("users", "read")])
    async def invitations(
        self, session: SessionDep, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
    ) -> Page[PendingInvitationOut]:
        """Invitations not yet accepted and not expired, newest first."""
        rows, next_cursor = await paginate(
            session, services.pending_invitations(), Invitation.id, cursor=cursor, limit=limit
        )
        return Page(
            items=[
                PendingInvitationOut(
                    id=invitation.id,
                    email=invitation.email,
                    role=invitation.role,
                    invited_by_id=invitation.invited_by_id,
                    created_at=invitation.created_at,
                    expires_at=invitation.expires_at,
                )
                for (invitation,) in rows
            ],
            next_cursor=next_cursor,
        )

    @delete(
        "/invitations/{invitation_id:uuid}",
        guards=[requires("users", "write")],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def revoke_invitation(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, invitation_id: FromPath[uuid.UUID]
    ) -> None:
        await services.revoke_invitation(session, request.user, invitation_id)

    @get("/me")
    async def me(self, request: Request[CurrentUser, Any, Any], session: SessionDep) -> UserOut:
        return user_out(await session.get_one(User, request.user.id))

    @patch("/me")
    async def update_me(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[ProfileUpdate]
    ) -> UserOut:
        return user_out(await services.update_profile(session, request.user, data))

    @post("/me/password", status_code=HTTP_200_OK)
    async def change_password(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        data: JSONBody[PasswordChangeRequest],
    ) -> SessionOut:
        """A new password for oneself: every session of the account ends (other tabs and devices
        too), and the answer is the new one this caller goes on with."""
        signed_in = await services.change_password(
            runtime,
            request.user,
            current_password=data.current_password,
            password=data.password,
            address=client_address(request),
        )
        return await session_out(signed_in)

    @patch("/{user_id:uuid}/role", guards=[requires("users", "write")])
    async def change_role(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[RoleChangeRequest],
    ) -> UserOut:
        user = await services.change_role(runtime, session, request.user, user_id=user_id, role=data.role)
        return user_out(user)

    @delete("/{user_id:uuid}", guards=[requires("users", "write")], status_code=HTTP_204_NO_CONTENT)
    async def remove(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        user_id: FromPath[uuid.UUID],
    ) -> None:
        await services.remove_user(runtime, session, request.user, user_id=user_id)


class SettingsController(Controller):
    path = "/api/settings"
    tags = ["settings"]  # noqa: RUF012

    @get("/organization", guards=[requires("settings", "read")])
    async def organization(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep
    ) -> OrganizationOut:
        return organization_out(await session.get_one(Organization, request.user.organization_id))

    @patch("/organization", guards=[requires("settings", "write")])
    async def update_organization(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[OrganizationUpdate]
    ) -> OrganizationOut:
        return organization_out(await services.update_organization(session, request.user, data))

    @get("/modules", guards=[requires("settings", "read")])
    async def modules(self, session: SessionDep) -> dict[str, bool]:
        return await services.module_settings(session)

    @patch("/modules", guards=[requires("settings", "write")])
    async def update_modules(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[ModuleSettings]
    ) -> dict[str, bool]:
        return await services.update_module_settings(session, request.user, data)

    @get("/ai", guards=[requires("settings", "read")])
    async def ai_settings(self, runtime: RuntimeDep, session: SessionDep) -> AISettingsOut:
        """Which AI server the organization uses: its own (without the key), the installation's, or none."""
        return await ai_settings_of(runtime, session)

    @put("/ai", guards=[requires("settings", "write")])
    async def save_ai_settings(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: JSONBody[AISettingsIn],
    ) -> AISettingsOut:
        """Use the organization's own OpenAI-compatible server (a public address; the key is sealed
        and never answered back)."""
        return await save_ai_settings(runtime, session, request.user, data)

    @delete("/ai", guards=[requires("settings", "write")], status_code=200, errors=(404,))
    async def remove_ai_settings(
        self, request: Request[CurrentUser, Any, Any], runtime: RuntimeDep, session: SessionDep
    ) -> AISettingsOut:
        """Back to the installation's AI server (or none)."""
        return await remove_ai_settings(runtime, session, request.user)

    @get("/usage", guards=[requires("billing", "read")])
    async def usage(
        self,
        session: SessionDep,
        month: Annotated[str | None, QueryParameter(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")] = None,
    ) -> UsageOut:
        """What the organization used in a month (UTC; this month unless given): messages sent."""
        month = month or services.usage_month(utcnow())
        return UsageOut(month=month, metrics=await services.usage_of(session, month))


class AuditController(Controller):
    path = "/api/audit"
    tags = ["audit"]  # noqa: RUF012

    # Admins only: the matrix gives settings:write to no other role.
    @get("/", guards=[requires("settings", "write")])
    async def list_entries(
        self,
        session: SessionDep,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
        object_type: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> Page[AuditEntryOut]:
        rows, next_cursor = await services.list_audit(
            session, cursor=cursor, limit=limit, object_type=object_type
        )
        return Page(
            items=[
                AuditEntryOut(
                    id=entry.id,
                    actor_id=entry.actor_id,
                    actor_name=actor_name,
                    action=entry.action,
                    object_type=entry.object_type,
                    object_id=entry.object_id,
                    changes=entry.changes,
                    created_at=entry.created_at,
                )
                for entry, actor_name in rows
            ],
            next_cursor=next_cursor,
        )


@get("/health", exclude_from_auth=True, tags=["operations"])
async def health(runtime: RuntimeDep) -> Response[HealthOut]:
    """Database, Redis and task broker; 503 when the database cannot be reached."""
    try:
        await runtime.db.ping()
        database = CheckOut(status="ok")
    except Exception as error:
        database = CheckOut(status="down", detail=type(error).__name__)
    if runtime.redis is None:
        redis = CheckOut(status="off", detail="embedded mode")
    else:
        try:
            await runtime.redis.ping()
            redis = CheckOut(status="ok")
        except Exception as error:
            redis = CheckOut(status="down", detail=type(error).__name__)
    broker_name = type(runtime.broker).__name__ if runtime.broker is not None else None
    if broker_name is None:
        broker = CheckOut(status="down", detail="no broker")
    elif runtime.redis is not None:
        broker = CheckOut(status=redis.status, detail=broker_name)
    else:
        broker = CheckOut(status="ok", detail=broker_name)
    down = database.status == "down"
    degraded = "down" in (redis.status, broker.status)
    body = HealthOut(
        status="down" if down else "degraded" if degraded else "ok",
        database=database,
        redis=redis,
        broker=broker,
    )
    return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE if down else HTTP_200_OK)


@get("/metrics", exclude_from_auth=True, include_in_schema=False)
async def metrics_endpoint(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[bytes]:
    """Prometheus metrics (see `hub.metrics`), with `Authorization: Bearer <HUB_METRICS_TOKEN>`;
    without a token configured there is nothing here."""
    token = runtime.settings.metrics_token
    if token is None:
        raise NotFound()
    given = request.headers.get("authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        raise NotAuthenticated(headers={"WWW-Authenticate": "Bearer"})
    body, content_type = await metrics.exposition(runtime)
    return Response(body, media_type=content_type)


class MediaController(Controller):
    path = "/api/media"
    tags = ["media"]  # noqa: RUF012

    @post(
        "/", status_code=201, request_max_body_size=storage.MAX_MEDIA_BYTES + 1024 * 1024, errors=(402, 415)
    )
    async def upload(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> MediaOut:
        """Upload one file (form field `data`, or any one file field); attach it to a message or
        ticket by its id. Its type is judged from its bytes, whatever the form declares."""
        files = [value for value in (data.get("data"), *data.values()) if isinstance(value, UploadFile)]
        if not files:
            raise InvalidInput(N_("Send the file in the form field data."), field="data")
        upload = files[0]

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await upload.read(storage.CHUNK):
                yield chunk

        incoming = await storage.receive_stream(runtime.settings, chunks())
        try:
            await require_storage(session, incoming.size)  # the plan's storage (402 when full)
            media = await storage.save_media(
                session,
                runtime.settings,
                incoming=incoming,
                declared_type=upload.content_type,
                filename=upload.filename,
            )
            await session.commit()
        finally:
            incoming.discard()
        return storage.describe(runtime.settings, media, public_url(request))

    @get("/{media_id:uuid}", exclude_from_auth=True)
    async def download(
        self,
        runtime: RuntimeDep,
        media_id: FromPath[uuid.UUID],
        expires: Annotated[int, QueryParameter()],
        signature: Annotated[str, QueryParameter(max_length=128)],
    ) -> Stream:
        """The bytes behind an expiring link; the link itself is the permission. Never active
        content: only the types the console previews are shown in the page, everything else is a
        download, and the answer may run nothing (a sandbox with no sources)."""
        if not storage.link_is_valid(runtime.settings, media_id, expires, signature):
            raise NotFound()
        async with runtime.db.system_session() as session:
            media = await session.get(Media, media_id)
        if media is None:
            raise NotFound()
        known = storage.kind_of(media.content_type) is not None
        content_type = media.content_type if known else "application/octet-stream"
        disposition = "inline" if storage.is_inline(content_type) else "attachment"
        if media.filename:
            disposition += f"; filename*=UTF-8''{quote(media.filename)}"
        headers = {
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Content-Disposition": disposition,
            "Content-Length": str(media.size),
        }
        handle = storage.media_store(runtime.settings).open(media.key)

        async def file_chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(handle.read, storage.CHUNK):
                    yield chunk
            finally:
                handle.close()

        return Stream(file_chunks(), media_type=content_type, headers=headers)


@get("/schema/asyncapi.json", exclude_from_auth=True, include_in_schema=False, media_type="application/json")
async def asyncapi_document() -> dict[str, Any]:
    """The socket events, as AsyncAPI (the HTTP API is at /schema/openapi.json)."""
    return asyncapi.document()


class AIController(Controller):
    path = "/api/ai"
    tags = ["ai"]  # noqa: RUF012

    @delete("/requests/{request_id:str}", status_code=204)
    async def cancel(self, request: Request[CurrentUser, Any, Any], request_id: FromPath[str]) -> None:
        """Stop an AI answer being written (its asker only; it ends with `aiFailed`, cancelled)."""
        if not ai.cancel(request_id, user_id=request.user.id):
            raise NotFound()


ROUTES = [
    AIController,
    AuthController,
    UserController,
    SettingsController,
    AuditController,
    MediaController,
    health,
    metrics_endpoint,
    asyncapi_document,
]
