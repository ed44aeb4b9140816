"""HTTP for campaigns (under /api/campaigns): campaigns, their recipients and results, previews,
and each channel's pacing."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from campaigns import lifecycle, results, services, views
from campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignUpdate,
    PacingIn,
    PacingOut,
    PreviewIn,
    PreviewOut,
    RecipientOut,
    RecipientStatus,
    ResultsOut,
    StartRequest,
    Status,
)
from hub.auth import CurrentUser
from hub.controllers import Cursor, Limit, RuntimeDep, SessionDep
from hub.errors import request_language
from hub.pagination import DEFAULT_LIMIT
from hub.permissions import requires
from hub.schemas import Page

READ, WRITE = requires("campaigns", "read"), requires("campaigns", "write")
AnyRequest = Request[CurrentUser, Any, Any]


class CampaignController(Controller):
    path = "/api/campaigns"
    tags = ["campaigns"]  # noqa: RUF012

    @get("/", guards=[READ])
    async def list_campaigns(
        self,
        request: AnyRequest,
        session: SessionDep,
        status: Annotated[list[Status] | None, QueryParameter()] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[CampaignOut]:
        """Newest first; `status` may repeat."""
        campaigns, next_cursor = await services.list_campaigns(
            session, status=list(status or []), cursor=cursor, limit=limit
        )
        language = request_language(request)
        return Page(
            items=[await services.view(session, campaign, language) for campaign in campaigns],
            next_cursor=next_cursor,
        )

    @post("/", guards=[WRITE], status_code=201)
    async def create(
        self, request: AnyRequest, session: SessionDep, data: JSONBody[CampaignIn]
    ) -> CampaignOut:
        """A draft: its recipients are counted in the background (`audience_status` becomes
        `ready`, with the counts of who will receive it and who is left out and why)."""
        campaign = await services.create_campaign(session, request.user, data)
        return await services.view(session, campaign, request_language(request))

    @post("/preview", guards=[READ], status_code=200)
    async def preview(self, session: SessionDep, data: JSONBody[PreviewIn]) -> PreviewOut:
        """The template as one customer (or a sample customer) would receive it, per language."""
        return PreviewOut(messages=await services.preview(session, dict(data.template), data.customer_id))

    @get("/pacing", guards=[READ])
    async def pacing(self, session: SessionDep) -> list[PacingOut]:
        """Every channel's pacing rules and where its counts stand."""
        return await services.list_pacing(session)

    @patch("/pacing/{channel_id:uuid}", guards=[WRITE])
    async def update_pacing(
        self, session: SessionDep, channel_id: FromPath[uuid.UUID], data: JSONBody[PacingIn]
    ) -> PacingOut:
        """A channel's gap, jitter, caps, long pauses and warm-up; shared by every campaign."""
        return await services.update_pacing(session, channel_id, data)

    @get("/{campaign_id:uuid}", guards=[READ])
    async def read(
        self, request: AnyRequest, session: SessionDep, campaign_id: FromPath[uuid.UUID]
    ) -> CampaignOut:
        campaign = await services.get_campaign(session, campaign_id)
        return await services.view(session, campaign, request_language(request))

    @patch("/{campaign_id:uuid}", guards=[WRITE])
    async def update(
        self,
        request: AnyRequest,
        session: SessionDep,
        campaign_id: FromPath[uuid.UUID],
        data: JSONBody[CampaignUpdate],
    ) -> CampaignOut:
        """Anything before it starts; name, window and auto-pause settings while it sends."""
        campaign = await services.update_campaign(session, campaign_id, data)
        return await services.view(session, campaign, request_language(request))

    @delete("/{campaign_id:uuid}", guards=[WRITE], status_code=204)
    async def remove(self, session: SessionDep, campaign_id: FromPath[uuid.UUID]) -> None:
        await services.delete_campaign(session, campaign_id)

    @post("/{campaign_id:uuid}/start", guards=[WRITE], status_code=200)
    async def start(
        self,
        request: AnyRequest,
        session: SessionDep,
        campaign_id: FromPath[uuid.UUID],
        data: JSONBody[StartRequest | None] = None,
    ) -> CampaignOut:
        """Send now, or at `starts_at` (the organization's local time when it has no zone)."""
        campaign = await lifecycle.start_campaign(session, campaign_id, data.starts_at if data else None)
        return await services.view(session, campaign, request_language(request))

    @post("/{campaign_id:uuid}/pause", guards=[WRITE], status_code=200)
    async def pause(
        self, request: AnyRequest, session: SessionDep, campaign_id: FromPath[uuid.UUID]
    ) -> CampaignOut:
        """Once this answers, no new message of the campaign begins to go out."""
        campaign = await lifecycle.pause_campaign(session, request.user, campaign_id)
        return await services.view(session, campaign, request_language(request))

    @post("/{campaign_id:uuid}/resume", guards=[WRITE], status_code=200)
    async def resume(
        self, request: AnyRequest, session: SessionDep, campaign_id: FromPath[uuid.UUID]
    ) -> CampaignOut:
        """Carry on where it stopped."""
        campaign = await lifecycle.resume_campaign(session, campaign_id)
        return await services.view(session, campaign, request_language(request))

    @post("/{campaign_id:uuid}/cancel", guards=[WRITE], status_code=200)
    async def cancel(
        self, request: AnyRequest, session: SessionDep, campaign_id: FromPath[uuid.UUID]
    ) -> CampaignOut:
        campaign = await lifecycle.cancel_campaign(session, campaign_id)
        return await services.view(session, campaign, request_language(request))

    @get("/{campaign_id:uuid}/results", guards=[READ])
    async def results(self, session: SessionDep, campaign_id: FromPath[uuid.UUID]) -> ResultsOut:
        """Counts by state; delivery, read and reply rates; per channel; sends per minute;
        failures by reason."""
        return await results.results(session, campaign_id)

    @get("/{campaign_id:uuid}/recipients", guards=[READ])
    async def recipients(
        self,
        session: SessionDep,
        campaign_id: FromPath[uuid.UUID],
        status: Annotated[list[RecipientStatus] | None, QueryParameter()] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[RecipientOut]:
        recipients, next_cursor = await results.list_recipients(
            session, campaign_id, status=list(status or []), cursor=cursor, limit=limit
        )
        return Page(items=[views.recipient_out(r) for r in recipients], next_cursor=next_cursor)

    @get("/{campaign_id:uuid}/recipients/export", guards=[READ])
    async def export(
        self, request: AnyRequest, runtime: RuntimeDep, campaign_id: FromPath[uuid.UUID]
    ) -> Stream:
        """Every recipient with their state, as a CSV file, streamed."""
        async with runtime.db.session(request.user.organization_id) as session:
            campaign = await services.get_campaign(session, campaign_id)  # 404 before the file starts
        return Stream(
            results.export_recipients(runtime, request.user.organization_id, campaign.id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="campaign-{campaign.id}.csv"'},
        )


ROUTES = [CampaignController]
