"""What the API carries of customers, companies, the pipeline, activities, attributes, imports
and the CRM's settings."""

from __future__ import annotations

import msgspec

from crm import services
from crm.models import (
    Activity,
    AttributeDefinition,
    Company,
    CrmSettings,
    Customer,
    CustomerImport,
    Deal,
    SalesStage,
)
from crm.schemas import (
    ActivityOut,
    AttributeDefinitionOut,
    CompanyOut,
    CrmSettingsOut,
    CustomerOut,
    DealOut,
    ImportOut,
    ScoreFactor,
    StageOut,
)
from hub.db import HubAsyncSession
from hub.i18n import translate


def deal_out(deal: Deal) -> DealOut:
    return DealOut(
        id=deal.id,
        title=deal.title,
        customer_id=deal.customer_id,
        company_id=deal.company_id,
        stage_id=deal.stage_id,
        amount=deal.amount,
        currency=deal.currency,
        owner_id=deal.owner_id,
        expected_close_on=deal.expected_close_on,
        source=deal.source,
        reason=deal.reason,
        closed_at=deal.closed_at,
        created_at=deal.created_at,
    )


def customer_out(customer: Customer) -> CustomerOut:
    return CustomerOut(
        id=customer.id,
        name=customer.name,
        phone=customer.phone,
        other_phones=[other.phone for other in customer.other_phones],
        email=customer.email,
        language=customer.language,
        opted_out=customer.opted_out,
        tags=list(customer.tags or []),
        attributes=dict(customer.attributes or {}),
        owner_id=customer.owner_id,
        company_id=customer.company_id,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
        score=customer.score,
        score_factors=[msgspec.convert(f, ScoreFactor) for f in customer.score_factors or []],
    )


def company_out(company: Company) -> CompanyOut:
    return CompanyOut(
        id=company.id,
        name=company.name,
        domain=company.domain,
        sector=company.sector,
        size=company.size,
        created_at=company.created_at,
    )


def stage_out(stage: SalesStage) -> StageOut:
    return StageOut(id=stage.id, name=stage.name, position=stage.position, outcome=stage.outcome)


def activity_out(activity: Activity) -> ActivityOut:
    return ActivityOut(
        id=activity.id,
        customer_id=activity.customer_id,
        kind=activity.kind,
        text=activity.text,
        author_id=activity.author_id,
        deal_id=activity.deal_id,
        due_at=activity.due_at,
        done_at=activity.done_at,
        details=dict(activity.details or {}),
        created_at=activity.created_at,
    )


def attribute_out(definition: AttributeDefinition) -> AttributeDefinitionOut:
    return AttributeDefinitionOut(
        id=definition.id,
        key=definition.key,
        label=definition.label,
        kind=definition.kind,
        choices=list(definition.choices or []),
    )


def import_out(job: CustomerImport, language: str) -> ImportOut:
    errors = []
    for error in job.errors or []:
        params = dict(error.get("params") or {})
        if "kind" in params:
            params["kind"] = services.ATTRIBUTE_KINDS.get(params["kind"], params["kind"])
        errors.append(
            {
                "row": error["row"],
                "field": error["field"],
                "reason": translate(language, error["reason"], **params),
            }
        )
    return ImportOut(
        id=job.id,
        status=job.status,
        rows=job.rows,
        created=job.created,
        updated=job.updated,
        skipped=job.skipped,
        failed=job.failed,
        errors=errors,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


async def settings_out(session: HubAsyncSession, settings: CrmSettings) -> CrmSettingsOut:
    return CrmSettingsOut(
        lead_origins=list(settings.lead_origins),
        scoring=await services.scoring_rules(session),
        opt_out_keywords=services.opt_out_keywords_of(settings),
    )
