"""Lead scoring: points from the organization's rules, with the factors that gave them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import String, bindparam, cast, func, or_, select

from crm.hooks import customer_facts, segment_condition_builders
from crm.models import Activity, CrmSettings, Customer, Deal, SalesStage
from crm.schemas import ScoringRules
from crm.services.settings import kept_recent_points
from hub.db import HubAsyncSession, utcnow


async def scoring_rules(session: HubAsyncSession) -> ScoringRules:
    stored = await session.scalar(select(CrmSettings.scoring))
    return msgspec.convert(stored or {}, ScoringRules)


_STORED_RULES = (
    select(CrmSettings.__table__.c.scoring)
    .where(CrmSettings.__table__.c.organization_id == bindparam("org"))
    .limit(1)
)


async def recent_message_factor(session: HubAsyncSession) -> dict[str, Any] | None:
    """The score factor of a customer who wrote just now, by the organization's rules (a first
    contact's score is this factor alone). Asked on every first contact, so each process keeps an
    organization's points for a few seconds; changing the rules forgets them here at once."""
    points = kept_recent_points.get(session.organization_id)
    if points is None:
        connection = await session.connection()
        stored = await connection.scalar(_STORED_RULES, {"org": session.organization_id})
        points = kept_recent_points.put(
            session.organization_id, msgspec.convert(stored or {}, ScoringRules).recent_points
        )
    if points <= 0:
        return None
    return {"factor": "recent_message", "points": points, "detail": {"days": 0.0}}


async def rescore(session: HubAsyncSession, customer: Customer, rules: ScoringRules | None = None) -> None:
    """Work out the customer's score from the rules and keep it with its factors (not committed)."""
    rules = rules or await scoring_rules(session)
    factors: list[dict[str, Any]] = []

    def add(factor: str, points: int, **detail: Any) -> None:
        if points > 0:
            factors.append({"factor": factor, "points": points, "detail": detail})

    last_message = (
        await customer_facts["last_message_at"](session, customer.id)
        if "last_message_at" in customer_facts
        else None
    )
    if last_message is not None:
        days = (utcnow() - last_message).total_seconds() / 86400
        if days <= rules.recent_days:
            add("recent_message", rules.recent_points, days=round(days, 1))
    if "reply_rate" in customer_facts:
        answered, sent = await customer_facts["reply_rate"](session, customer.id)
        if sent:
            add("reply_rate", round(rules.reply_points * answered / sent), answered=answered, sent=sent)
    stages = list(await session.scalars(select(SalesStage).order_by(SalesStage.position, SalesStage.id)))
    open_stages = [stage.id for stage in stages if stage.outcome == "open"]
    outcome = {stage.id: stage.outcome for stage in stages}
    deals = list(await session.scalars(select(Deal).where(Deal.customer_id == customer.id).order_by(Deal.id)))
    reached = [open_stages.index(deal.stage_id) for deal in deals if deal.stage_id in open_stages]
    if reached and open_stages:
        furthest = max(reached)
        name = next(stage.name for stage in stages if stage.id == open_stages[furthest])
        add("deal_stage", round(rules.stage_points * (furthest + 1) / len(open_stages)), stage=name)
    won = [deal for deal in deals if outcome.get(deal.stage_id) == "won"]
    if won:
        add("deal_won", rules.won_points, deals=len(won))
    amount = sum((deal.amount for deal in deals if outcome.get(deal.stage_id) != "lost"), Decimal(0))
    add(
        "deal_amount",
        min(rules.amount_max, int(amount // rules.amount_step) * rules.amount_points),
        amount=str(amount),
    )
    written = await session.scalar(
        select(func.count())
        .select_from(Activity)
        .where(Activity.customer_id == customer.id, Activity.kind.in_(TEAM_ACTIVITIES))
    )
    add(
        "activities",
        min(rules.activity_max, int(written or 0) * rules.activity_points),
        count=int(written or 0),
    )
    hot = {source.lower() for source in rules.hot_sources}
    sources = [deal.source for deal in deals if deal.source and deal.source.lower() in hot]
    if sources:
        add("source", rules.source_points, source=sources[-1])
    customer.score = min(100, sum(factor["points"] for factor in factors))
    customer.score_factors = factors


async def rescore_by_id(session: HubAsyncSession, customer_id: uuid.UUID) -> None:
    customer = await session.get(Customer, customer_id)
    if customer is not None:
        await rescore(session, customer)


async def note_recent_message(session: HubAsyncSession, customer_id: uuid.UUID) -> None:
    """The customer wrote just now. Of the score only the recent-message factor depends on that,
    and it now counts in full: the score moves by it without being worked out again (a first
    contact would otherwise cost six reads for a score made of this one factor)."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return
    rules = await scoring_rules(session)
    factors = [factor for factor in customer.score_factors or [] if factor["factor"] != "recent_message"]
    if rules.recent_points > 0:
        factors.insert(
            0, {"factor": "recent_message", "points": rules.recent_points, "detail": {"days": 0.0}}
        )
    if factors != customer.score_factors:
        customer.score_factors = factors
        customer.score = min(100, sum(factor["points"] for factor in factors))


RESCORE_BATCH = 500
TEAM_ACTIVITIES = ("note", "call", "meeting", "task")


async def rescore_organization(runtime: Any, organization_id: uuid.UUID, *, only_recent: bool = False) -> int:
    """Rescore an organization's customers a batch at a time (after its rules change, or, with
    `only_recent`, those whose recent-message points may have lapsed or become due)."""
    done, after = 0, None
    while True:
        async with runtime.db.session(organization_id) as session:
            rules = await scoring_rules(session)
            statement = select(Customer).order_by(Customer.id).limit(RESCORE_BATCH)
            if after is not None:
                statement = statement.where(Customer.id > after)
            if only_recent and "last_contacted_after" in segment_condition_builders:
                since = utcnow() - timedelta(days=rules.recent_days + 1)
                statement = statement.where(
                    or_(
                        cast(Customer.score_factors, String).like('%"recent_message"%'),
                        segment_condition_builders["last_contacted_after"](since),
                    )
                )
            batch = list(await session.scalars(statement))
            for customer in batch:
                await rescore(session, customer, rules)
            await session.commit()
        done += len(batch)
        if len(batch) < RESCORE_BATCH:
            return done
        after = batch[-1].id
