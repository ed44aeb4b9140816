"""The sales pipeline: stages (the defaults in the reader's language), deals and the board."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from msgspec import UNSET
from sqlalchemy import select, update

from crm.events import DealUpdated
from crm.models import Activity, Customer, Deal, SalesStage
from crm.schemas import DealIn, DealUpdate, StageIn, StageUpdate
from crm.services.customers import check_company, check_user
from crm.services.scoring import rescore_by_id
from crm.views import deal_out
from hub.audience import crm_readers
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_, translate
from hub.realtime import push

DEFAULT_STAGES = (
    (N_("New"), "open"),
    (N_("Contacted"), "open"),
    (N_("Qualified"), "open"),
    (N_("Proposal"), "open"),
    (N_("Won"), "won"),
    (N_("Lost"), "lost"),
)


async def list_stages(session: HubAsyncSession, language: str) -> list[SalesStage]:
    """The pipeline in order; an organization's first look creates the default stages in its language."""
    stages = list(await session.scalars(select(SalesStage).order_by(SalesStage.position, SalesStage.id)))
    if stages:
        return stages
    stages = [
        SalesStage(name=translate(language, name), outcome=outcome, position=position)
        for position, (name, outcome) in enumerate(DEFAULT_STAGES)
    ]
    session.add_all(stages)
    await session.commit()
    return stages


def _renumber(stages: list[SalesStage]) -> None:
    for position, stage in enumerate(stages):
        stage.position = position


async def create_stage(session: HubAsyncSession, language: str, data: StageIn) -> SalesStage:
    stages = await list_stages(session, language)
    stage = SalesStage(name=data.name.strip(), outcome=data.outcome, position=len(stages))
    session.add(stage)
    position = len(stages) if data.position is None else min(data.position, len(stages))
    stages.insert(position, stage)
    _renumber(stages)
    await session.commit()
    return stage


async def update_stage(
    session: HubAsyncSession, language: str, stage_id: uuid.UUID, data: StageUpdate
) -> SalesStage:
    stages = await list_stages(session, language)
    stage = next((s for s in stages if s.id == stage_id), None)
    if stage is None:
        raise NotFound()
    if data.name is not UNSET:
        stage.name = data.name.strip()
    if data.position is not UNSET:
        stages.remove(stage)
        stages.insert(min(data.position, len(stages)), stage)
        _renumber(stages)
    await session.commit()
    return stage


async def delete_stage(
    session: HubAsyncSession, language: str, stage_id: uuid.UUID, move_to: uuid.UUID | None
) -> None:
    """Delete a stage; its deals go to `move_to`, which is required when it has any."""
    stages = await list_stages(session, language)
    stage = next((s for s in stages if s.id == stage_id), None)
    if stage is None:
        raise NotFound()
    if len(stages) == 1:
        raise Conflict(N_("The pipeline needs at least one stage."), field="stage_id")
    has_deals = await session.scalar(select(Deal.id).where(Deal.stage_id == stage.id).limit(1))
    if has_deals is not None:
        target = next((s for s in stages if s.id == move_to and s.id != stage.id), None)
        if target is None:
            raise InvalidInput(N_("Choose another stage of this pipeline for its deals."), field="move_to")
        await session.execute(
            update(Deal)
            .where(Deal.stage_id == stage.id)
            .values(stage_id=target.id, closed_at=utcnow() if target.outcome != "open" else None)
            .execution_options(synchronize_session=False)
        )
    stages.remove(stage)
    await session.delete(stage)
    _renumber(stages)
    await session.commit()


async def _stage(session: HubAsyncSession, stage_id: uuid.UUID) -> SalesStage:
    stage = await session.get(SalesStage, stage_id)
    if stage is None:  # another organization's stage looks like no stage at all
        raise InvalidInput(N_("There is no such stage in this pipeline."), field="stage_id")
    return stage


MAX_AMOUNT = Decimal("999999999999.99")
DEFAULT_CURRENCY = "SAR"


def _amount(value: Decimal) -> Decimal:
    if not value.is_finite() or not Decimal(0) <= value <= MAX_AMOUNT:
        raise InvalidInput(N_("Must be between 0 and {maximum}."), field="amount", maximum=MAX_AMOUNT)
    return value.quantize(Decimal("0.01"))


async def create_deal(session: HubAsyncSession, actor: CurrentUser, language: str, data: DealIn) -> Deal:
    amount = _amount(data.amount)
    if await session.get(Customer, data.customer_id) is None:
        raise InvalidInput(N_("There is no such customer."), field="customer_id")
    await check_company(session, data.company_id)
    await check_user(session, data.owner_id, "owner_id")
    if data.stage_id is None:
        stage = (await list_stages(session, language))[0]
    else:
        stage = await _stage(session, data.stage_id)
    deal = Deal(
        title=data.title.strip(),
        customer_id=data.customer_id,
        company_id=data.company_id,
        stage_id=stage.id,
        amount=amount,
        currency=data.currency,
        owner_id=data.owner_id or actor.id,
        expected_close_on=data.expected_close_on,
        source=data.source,
        closed_at=utcnow() if stage.outcome != "open" else None,
    )
    session.add(deal)
    await session.flush()
    _record_deal_activity(session, actor, deal, "deal_created", stage=stage.name)
    await _deal_changed(session, deal, stage)
    return deal


async def get_deal(session: HubAsyncSession, deal_id: uuid.UUID) -> Deal:
    deal = await session.get(Deal, deal_id)
    if deal is None:
        raise NotFound()
    return deal


async def update_deal(
    session: HubAsyncSession, actor: CurrentUser, deal_id: uuid.UUID, data: DealUpdate
) -> Deal:
    """Change a deal; a move to another stage is recorded on the customer's timeline, and a move to
    a won stage is the sale (its amount and date are the deal's amount and closing time)."""
    deal = await get_deal(session, deal_id)
    stage = await session.get_one(SalesStage, deal.stage_id)
    if data.company_id is not UNSET:
        await check_company(session, data.company_id)
        deal.company_id = data.company_id
    if data.owner_id is not UNSET:
        await check_user(session, data.owner_id, "owner_id")
        deal.owner_id = data.owner_id
    if data.amount is not UNSET:
        deal.amount = _amount(data.amount)
    for field in ("title", "currency", "expected_close_on", "source", "reason"):
        value = getattr(data, field)
        if value is not UNSET:
            setattr(deal, field, value.strip() if field == "title" else value)
    if data.stage_id is not UNSET and data.stage_id != deal.stage_id:
        previous, stage = stage, await _stage(session, data.stage_id)
        deal.stage_id = stage.id
        deal.closed_at = utcnow() if stage.outcome != "open" else None
        _record_deal_activity(
            session,
            actor,
            deal,
            "deal_stage_changed",
            **{"from": previous.name, "to": stage.name},
            outcome=stage.outcome,
        )
    await _deal_changed(session, deal, stage)
    return deal


async def delete_deal(session: HubAsyncSession, deal_id: uuid.UUID) -> None:
    deal = await get_deal(session, deal_id)
    await session.delete(deal)
    await session.flush()
    await rescore_by_id(session, deal.customer_id)
    await session.commit()


def _record_deal_activity(
    session: HubAsyncSession, actor: CurrentUser, deal: Deal, kind: str, **details: Any
) -> None:
    details |= {"title": deal.title, "amount": str(deal.amount), "currency": deal.currency}
    session.add(
        Activity(
            customer_id=deal.customer_id, kind=kind, author_id=actor.id, deal_id=deal.id, details=details
        )
    )


async def _deal_changed(session: HubAsyncSession, deal: Deal, stage: SalesStage) -> None:
    """Rescore its customer, commit, and show the board's readers the deal as it is now."""
    push(session, DealUpdated(deal_id=deal.id, stage_id=stage.id, deal=deal_out(deal)), crm_readers())
    await rescore_by_id(session, deal.customer_id)
    await session.commit()


async def board(
    session: HubAsyncSession,
    language: str,
    *,
    owner_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
) -> list[tuple[SalesStage, list[Deal], int, dict[str, Decimal]]]:
    """The stages in order, each with its deals (newest first) and its totals per currency."""
    stages = await list_stages(session, language)
    statement = select(Deal).order_by(Deal.id.desc())
    if owner_id is not None:
        statement = statement.where(Deal.owner_id == owner_id)
    if customer_id is not None:
        statement = statement.where(Deal.customer_id == customer_id)
    by_stage: dict[uuid.UUID, list[Deal]] = {stage.id: [] for stage in stages}
    for deal in await session.scalars(statement):
        by_stage.setdefault(deal.stage_id, []).append(deal)
    columns = []
    for stage in stages:
        deals = by_stage[stage.id]
        totals: dict[str, Decimal] = {}
        for deal in deals:
            totals[deal.currency] = totals.get(deal.currency, Decimal(0)) + deal.amount
        columns.append((stage, deals, len(deals), totals))
    return columns
