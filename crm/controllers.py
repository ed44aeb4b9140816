"""HTTP for the CRM (under /api/crm): customers, attributes, companies, the pipeline, activities."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, route
from litestar.enums import HttpMethod
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream
from msgspec import UNSET

from crm import services
from crm.models import (
    Segment,
)
from crm.schemas import (
    ActivityIn,
    ActivityOut,
    ActivityUpdate,
    AttributeDefinitionIn,
    AttributeDefinitionOut,
    BoardColumn,
    CompanyIn,
    CompanyOut,
    CompanyUpdate,
    CrmSettingsOut,
    CrmSettingsUpdate,
    CustomerIn,
    CustomerOut,
    CustomerUpdate,
    DealIn,
    DealOut,
    DealUpdate,
    ImportOut,
    ImportRequest,
    LeadAccepted,
    LeadIn,
    MergeRequest,
    ScoreFactor,
    ScoreOut,
    SegmentCounts,
    SegmentFilters,
    SegmentIn,
    SegmentOut,
    SegmentUpdate,
    Sort,
    StageIn,
    StageOut,
    StageTotal,
    StageUpdate,
)
from crm.views import (
    activity_out,
    attribute_out,
    company_out,
    customer_out,
    deal_out,
    import_out,
    settings_out,
    stage_out,
)
from hub.auth import CurrentUser
from hub.controllers import Cursor, Limit, RuntimeDep, SessionDep
from hub.errors import Forbidden, InvalidInput, TooManyRequests, request_language
from hub.i18n import N_, choose_language, translate
from hub.pagination import DEFAULT_LIMIT
from hub.permissions import requires
from hub.schemas import Page
from hub.throttle import client_address

READ, WRITE = requires("crm", "read"), requires("crm", "write")


class CustomerController(Controller):
    path = "/api/crm/customers"
    tags = ["crm"]  # noqa: RUF012

    @get("/", guards=[READ])
    async def list_customers(
        self,
        session: SessionDep,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        tag: Annotated[str | None, QueryParameter(max_length=50)] = None,
        company: Annotated[uuid.UUID | None, QueryParameter()] = None,
        sort: Annotated[Sort, QueryParameter()] = "newest",
        cursor: Annotated[str | None, QueryParameter(max_length=400)] = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[CustomerOut]:
        """Search by name, phone, e-mail or attribute value; newest first, oldest first or by name."""
        found, next_cursor = await services.list_customers(
            session, query=q, tag=tag, company_id=company, sort=sort, cursor=cursor, limit=limit
        )
        return Page(items=[customer_out(c) for c in found], next_cursor=next_cursor)

    @post("/", guards=[WRITE], status_code=201)
    async def create(self, session: SessionDep, data: JSONBody[CustomerIn]) -> CustomerOut:
        return customer_out(await services.create_customer(session, data))

    @get("/{customer_id:uuid}", guards=[READ])
    async def detail(self, session: SessionDep, customer_id: FromPath[uuid.UUID]) -> CustomerOut:
        return customer_out(await services.get_customer(session, customer_id))

    @patch("/{customer_id:uuid}", guards=[WRITE])
    async def update(
        self, session: SessionDep, customer_id: FromPath[uuid.UUID], data: JSONBody[CustomerUpdate]
    ) -> CustomerOut:
        return customer_out(await services.update_customer(session, customer_id, data))

    @delete("/{customer_id:uuid}", guards=[WRITE], status_code=204)
    async def remove(self, session: SessionDep, customer_id: FromPath[uuid.UUID]) -> None:
        await services.delete_customer(session, customer_id)

    @post("/{customer_id:uuid}/merge", guards=[WRITE], status_code=200)
    async def merge(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        customer_id: FromPath[uuid.UUID],
        data: JSONBody[MergeRequest],
    ) -> CustomerOut:
        """Fold a duplicate record of the same person into this one, keeping everything of both."""
        return customer_out(
            await services.merge_customers(session, request.user, customer_id, data.duplicate_id)
        )

    @post("/{customer_id:uuid}/score", guards=[READ], status_code=200)
    async def score(self, session: SessionDep, customer_id: FromPath[uuid.UUID]) -> ScoreOut:
        """Work the lead score out again now, and show what made it."""
        customer = await services.get_customer(session, customer_id)
        await services.rescore(session, customer)
        await session.commit()
        return ScoreOut(
            score=customer.score, factors=[msgspec.convert(f, ScoreFactor) for f in customer.score_factors]
        )

    @post("/{customer_id:uuid}/activity", guards=[READ], status_code=201)
    async def log_activity(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        customer_id: FromPath[uuid.UUID],
        data: JSONBody[ActivityIn],
    ) -> ActivityOut:
        """Notes, calls, meetings and tasks: everyone who reads the CRM may write them down."""
        return activity_out(await services.add_activity(session, request.user, customer_id, data))

    @get("/{customer_id:uuid}/activity", guards=[READ])
    async def list_activity(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        customer_id: FromPath[uuid.UUID],
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[ActivityOut]:
        """The customer's timeline, newest first: what the team wrote and what the hub recorded,
        without what the caller may not see (an agent, the tickets and chats of others)."""
        found, next_cursor = await services.timeline(
            session, request.user, customer_id, cursor=cursor, limit=limit
        )
        return Page(items=[activity_out(a) for a in found], next_cursor=next_cursor)

    @patch("/{customer_id:uuid}/activity/{activity_id:uuid}", guards=[READ])
    async def update_activity(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        customer_id: FromPath[uuid.UUID],
        activity_id: FromPath[uuid.UUID],
        data: JSONBody[ActivityUpdate],
    ) -> ActivityOut:
        """Its author may change an entry, and so may managers and admins."""
        return activity_out(
            await services.update_activity(session, request.user, customer_id, activity_id, data)
        )


class AttributeController(Controller):
    path = "/api/crm/attributes"
    tags = ["crm"]  # noqa: RUF012

    @get("/", guards=[READ])
    async def list_definitions(self, session: SessionDep) -> list[AttributeDefinitionOut]:
        return [attribute_out(d) for d in await services.list_attribute_definitions(session)]

    @post("/", guards=[WRITE], status_code=201)
    async def create(
        self, session: SessionDep, data: JSONBody[AttributeDefinitionIn]
    ) -> AttributeDefinitionOut:
        return attribute_out(await services.create_attribute_definition(session, data))

    @delete("/{definition_id:uuid}", guards=[WRITE], status_code=204)
    async def remove(self, session: SessionDep, definition_id: FromPath[uuid.UUID]) -> None:
        await services.delete_attribute_definition(session, definition_id)


class CompanyController(Controller):
    path = "/api/crm/companies"
    tags = ["crm"]  # noqa: RUF012

    @get("/", guards=[READ])
    async def list_companies(
        self,
        session: SessionDep,
        q: Annotated[str | None, QueryParameter(max_length=200)] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[CompanyOut]:
        found, next_cursor = await services.list_companies(session, query=q, cursor=cursor, limit=limit)
        return Page(items=[company_out(c) for c in found], next_cursor=next_cursor)

    @post("/", guards=[WRITE], status_code=201)
    async def create(self, session: SessionDep, data: JSONBody[CompanyIn]) -> CompanyOut:
        return company_out(await services.create_company(session, data))

    @get("/{company_id:uuid}", guards=[READ])
    async def detail(self, session: SessionDep, company_id: FromPath[uuid.UUID]) -> CompanyOut:
        return company_out(await services.get_company(session, company_id))

    @patch("/{company_id:uuid}", guards=[WRITE])
    async def update(
        self, session: SessionDep, company_id: FromPath[uuid.UUID], data: JSONBody[CompanyUpdate]
    ) -> CompanyOut:
        return company_out(await services.update_company(session, company_id, data))

    @delete("/{company_id:uuid}", guards=[WRITE], status_code=204)
    async def remove(self, session: SessionDep, company_id: FromPath[uuid.UUID]) -> None:
        await services.delete_company(session, company_id)


class PipelineController(Controller):
    path = "/api/crm"
    tags = ["crm"]  # noqa: RUF012

    @get("/sales-stages", guards=[READ])
    async def stages(self, request: Request[CurrentUser, Any, Any], session: SessionDep) -> list[StageOut]:
        return [stage_out(s) for s in await services.list_stages(session, request_language(request))]

    @post("/sales-stages", guards=[WRITE], status_code=201)
    async def create_stage(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[StageIn]
    ) -> StageOut:
        return stage_out(await services.create_stage(session, request_language(request), data))

    @patch("/sales-stages/{stage_id:uuid}", guards=[WRITE])
    async def update_stage(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        stage_id: FromPath[uuid.UUID],
        data: JSONBody[StageUpdate],
    ) -> StageOut:
        """Rename a stage, or move it to another position (the others close up around it)."""
        return stage_out(await services.update_stage(session, request_language(request), stage_id, data))

    @delete("/sales-stages/{stage_id:uuid}", guards=[WRITE], status_code=204)
    async def delete_stage(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        stage_id: FromPath[uuid.UUID],
        move_to: Annotated[uuid.UUID | None, QueryParameter()] = None,
    ) -> None:
        """Delete a stage; `move_to` names the stage its deals go to."""
        await services.delete_stage(session, request_language(request), stage_id, move_to)

    @get("/board", guards=[READ])
    async def board(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        owner: Annotated[str | None, QueryParameter(max_length=64)] = None,
        customer: Annotated[uuid.UUID | None, QueryParameter()] = None,
    ) -> list[BoardColumn]:
        """The pipeline: its stages in order, each with its deals and totals per currency; `customer`
        keeps one customer's deals (the inbox's side panel)."""
        try:
            owner_id = request.user.id if owner == "me" else (uuid.UUID(owner) if owner else None)
        except ValueError:
            raise InvalidInput(N_("Use me or a user id."), field="owner") from None
        columns = await services.board(
            session, request_language(request), owner_id=owner_id, customer_id=customer
        )
        return [
            BoardColumn(
                stage=stage_out(stage),
                deals=[deal_out(d) for d in deals],
                count=count,
                totals=[StageTotal(currency=c, amount=a) for c, a in sorted(totals.items())],
            )
            for stage, deals, count, totals in columns
        ]

    @post("/deals", guards=[WRITE], status_code=201)
    async def create_deal(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[DealIn]
    ) -> DealOut:
        return deal_out(await services.create_deal(session, request.user, request_language(request), data))

    @get("/deals/{deal_id:uuid}", guards=[READ])
    async def deal(self, session: SessionDep, deal_id: FromPath[uuid.UUID]) -> DealOut:
        return deal_out(await services.get_deal(session, deal_id))

    @patch("/deals/{deal_id:uuid}", guards=[WRITE])
    async def update_deal(
        self,
        request: Request[CurrentUser, Any, Any],
        session: SessionDep,
        deal_id: FromPath[uuid.UUID],
        data: JSONBody[DealUpdate],
    ) -> DealOut:
        """Change a deal or move it to another stage; a move to a won stage records the sale."""
        return deal_out(await services.update_deal(session, request.user, deal_id, data))

    @delete("/deals/{deal_id:uuid}", guards=[WRITE], status_code=204)
    async def delete_deal(self, session: SessionDep, deal_id: FromPath[uuid.UUID]) -> None:
        await services.delete_deal(session, deal_id)


class SegmentController(Controller):
    path = "/api/crm/segments"
    tags = ["crm"]  # noqa: RUF012

    async def _out(self, session: Any, segment: Segment) -> SegmentOut:
        filters = services.segment_filters(segment)
        matching, opted_out = await services.count_segment(session, filters)
        return SegmentOut(
            id=segment.id,
            name=segment.name,
            filters=filters,
            counts=SegmentCounts(matching=matching, sendable=matching - opted_out, opted_out=opted_out),
            created_at=segment.created_at,
        )

    @get("/", guards=[READ])
    async def list_segments(self, session: SessionDep) -> list[SegmentOut]:
        return [await self._out(session, s) for s in await services.list_segments(session)]

    @post("/", guards=[WRITE], status_code=201)
    async def create(self, session: SessionDep, data: JSONBody[SegmentIn]) -> SegmentOut:
        segment = await services.save_segment(session, None, name=data.name, filters=data.filters)
        return await self._out(session, segment)

    @post("/preview", guards=[READ], status_code=200)
    async def preview(self, session: SessionDep, data: JSONBody[SegmentFilters]) -> SegmentCounts:
        """How many customers the filters match, and how many of them may be sent to."""
        matching, opted_out = await services.count_segment(session, data)
        return SegmentCounts(matching=matching, sendable=matching - opted_out, opted_out=opted_out)

    @get("/{segment_id:uuid}", guards=[READ])
    async def detail(self, session: SessionDep, segment_id: FromPath[uuid.UUID]) -> SegmentOut:
        return await self._out(session, await services.get_segment(session, segment_id))

    @patch("/{segment_id:uuid}", guards=[WRITE])
    async def update(
        self, session: SessionDep, segment_id: FromPath[uuid.UUID], data: JSONBody[SegmentUpdate]
    ) -> SegmentOut:
        segment = await services.get_segment(session, segment_id)
        segment = await services.save_segment(
            session,
            segment,
            name=data.name if data.name is not UNSET else None,
            filters=data.filters if data.filters is not UNSET else None,
        )
        return await self._out(session, segment)

    @delete("/{segment_id:uuid}", guards=[WRITE], status_code=204)
    async def remove(self, session: SessionDep, segment_id: FromPath[uuid.UUID]) -> None:
        await services.delete_segment(session, segment_id)

    @get("/{segment_id:uuid}/export", guards=[READ])
    async def export(
        self, request: Request[CurrentUser, Any, Any], runtime: RuntimeDep, segment_id: FromPath[uuid.UUID]
    ) -> Stream:
        """Its customers as a CSV file, streamed."""
        async with runtime.db.session(request.user.organization_id) as session:
            segment = await services.get_segment(session, segment_id)  # 404 before the file starts
        filename = f"segment-{segment.id}.csv"
        return Stream(
            services.export_segment(runtime, request.user.organization_id, segment.id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @get("/{segment_id:uuid}/customers", guards=[READ])
    async def members(
        self,
        session: SessionDep,
        segment_id: FromPath[uuid.UUID],
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[CustomerOut]:
        """Its customers now, newest first (those who opted out included, marked)."""
        filters = services.segment_filters(await services.get_segment(session, segment_id))
        found, next_cursor = await services.segment_customers(session, filters, cursor=cursor, limit=limit)
        return Page(items=[customer_out(c) for c in found], next_cursor=next_cursor)


class ImportController(Controller):
    path = "/api/crm/imports"
    tags = ["crm"]  # noqa: RUF012

    @post("/", guards=[WRITE], status_code=202)
    async def start(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, data: JSONBody[ImportRequest]
    ) -> ImportOut:
        """Read a CSV file (uploaded through POST /api/media) into customers, in the background:
        `importProgress` events follow it, and each bad row is reported with its reason."""
        job = await services.start_import(session, request.user, data)
        return import_out(job, request_language(request))

    @get("/{import_id:uuid}", guards=[READ])
    async def detail(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep, import_id: FromPath[uuid.UUID]
    ) -> ImportOut:
        return import_out(await services.get_import(session, import_id), request_language(request))


class CrmSettingsController(Controller):
    path = "/api/crm/settings"
    tags = ["crm"]  # noqa: RUF012

    @get("/", guards=[READ])
    async def read(self, session: SessionDep) -> CrmSettingsOut:
        settings = await services.crm_settings(session)
        await session.commit()
        return await settings_out(session, settings)

    @patch("/", guards=[requires("settings", "write")])
    async def update(self, session: SessionDep, data: JSONBody[CrmSettingsUpdate]) -> CrmSettingsOut:
        """The web pages whose browsers may post the lead form (exact origins), the lead scoring
        rules (every customer is rescored in the background when they change), and the keywords
        with which a customer stops receiving campaigns (an empty list restores the defaults)."""
        settings = await services.update_crm_settings(
            session,
            lead_origins=None if data.lead_origins is UNSET else data.lead_origins,
            scoring=None if data.scoring is UNSET else data.scoring,
            opt_out_keywords=None if data.opt_out_keywords is UNSET else data.opt_out_keywords,
        )
        return await settings_out(session, settings)


LEADS_PER_MINUTE = 10  # per address and organization: a person fills in a form a few times at most


def _cors(origin: str | None) -> dict[str, str]:
    if origin is None:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


class LeadController(Controller):
    """The public lead form of an organization: no account, its own CORS origins and rate limit."""

    path = "/api/public/{organization_slug:str}/leads"
    tags = ["crm"]  # noqa: RUF012

    # Litestar adds a default OPTIONS handler unless the first handler it meets for the path has
    # one; it meets a controller's handlers in name order, hence this name before `capture`.
    @route("/", http_method=[HttpMethod.OPTIONS], exclude_from_auth=True, status_code=204)
    async def allow_browsers(
        self, request: Request[Any, Any, Any], runtime: RuntimeDep, organization_slug: FromPath[str]
    ) -> Response[None]:
        organization = await services.organization_by_slug(runtime, organization_slug)
        origin = request.headers.get("origin")
        allowed = origin is not None and await services.lead_origin_allowed(runtime, organization, origin)
        return Response(None, status_code=204, headers=_cors(origin) if allowed else {})

    @post("/", exclude_from_auth=True, status_code=202, errors=(403,))
    async def capture(
        self,
        request: Request[Any, Any, Any],
        runtime: RuntimeDep,
        organization_slug: FromPath[str],
        data: JSONBody[LeadIn],
    ) -> Response[LeadAccepted]:
        """A lead from a website form: the person, their company and a deal in the first stage."""
        organization = await services.organization_by_slug(runtime, organization_slug)
        origin = request.headers.get("origin")
        if not await services.lead_origin_allowed(runtime, organization, origin):
            raise Forbidden(N_("This page may not send leads here."), field="origin")
        window = int(time.time() // 60)
        if (
            await runtime.counters.hit(f"leads:{organization.id}:{client_address(request)}:{window}", 60)
            > LEADS_PER_MINUTE
        ):
            raise TooManyRequests(headers={"Retry-After": str(60 - int(time.time()) % 60)})
        # A robot (the hidden field filled in) is told what a person would be told.
        if not data.website:
            await services.capture_lead(runtime, organization, data)
        language = data.locale or choose_language(
            preferred=None,
            accept_language=request.headers.get("accept-language"),
            organization_default=organization.default_language,
        )
        thanks = translate(language, N_("Thank you. We will be in touch soon."))
        return Response(LeadAccepted(detail=thanks), status_code=202, headers=_cors(origin))


ROUTES = [
    CustomerController,
    AttributeController,
    CompanyController,
    PipelineController,
    SegmentController,
    ImportController,
    CrmSettingsController,
    LeadController,
]
