"""Lead capture from a website form: a new customer (or a review entry for a known one), a deal
and a company, with the same thanks for everyone."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from crm.events import LeadCreated
from crm.models import Activity, Company, CrmSettings, Customer, Deal
from crm.schemas import LeadIn
from crm.services.customers import EMAIL, normalized_email, normalized_phone
from crm.services.identity import phone_owner
from crm.services.pipeline import DEFAULT_CURRENCY, list_stages
from crm.services.scoring import rescore
from hub.audience import writers_of
from hub.db import HubAsyncSession
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_, translate
from hub.models import Organization
from hub.realtime import push


async def organization_by_slug(runtime: Any, slug: str) -> Organization:
    async with runtime.db.system_session() as session:
        organization = await session.scalar(select(Organization).where(Organization.slug == slug))
    if organization is None:
        raise NotFound()
    return organization


async def lead_origin_allowed(runtime: Any, organization: Organization, origin: str | None) -> bool:
    """A browser's post must come from one of the organization's pages; a server's has no origin."""
    if origin is None:
        return True
    async with runtime.db.session(organization.id) as session:
        settings = await session.scalar(select(CrmSettings))
    return settings is not None and origin.lower() in settings.lead_origins


@dataclass(frozen=True, slots=True)
class CapturedLead:
    """What a lead became: a new customer and deal, or an entry on a known customer's timeline."""

    customer_id: uuid.UUID
    deal_id: uuid.UUID | None
    existing: bool


async def _earlier_lead(session: HubAsyncSession, key: str | None) -> CapturedLead | None:
    if key is None:
        return None
    earlier = await session.scalar(select(Activity).where(Activity.source_key == key))
    if earlier is None:
        return None
    return CapturedLead(
        customer_id=earlier.customer_id, deal_id=earlier.deal_id, existing=earlier.deal_id is None
    )


async def capture_lead(runtime: Any, organization: Organization, lead: LeadIn) -> CapturedLead:
    """A website form's lead. Anyone may post it, so it never changes a record it finds: a new
    person becomes a customer (with their company) and a deal in the pipeline's first stage; a
    known one (by e-mail or phone) gets only an entry on their timeline, with what the form said,
    for the team to review. A repeated key creates nothing."""
    key = f"lead:{lead.idempotency_key}" if lead.idempotency_key else None
    async with runtime.db.session(organization.id) as session:
        earlier = await _earlier_lead(session, key)
        if earlier is not None:
            return earlier
        email = normalized_email(lead.email)
        if email is not None and not EMAIL.match(email):
            raise InvalidInput(N_("This is not a valid e-mail address."), field="email")
        phone = await normalized_phone(session, lead.phone)
        if email is None and phone is None:
            raise InvalidInput(N_("Give an e-mail address or a phone number."), field="email")
        conditions = [
            c
            for c in (
                Customer.email == email if email else None,
                Customer.id == phone_owner(phone, session.organization_id) if phone else None,
            )
            if c is not None
        ]
        customer = await session.scalar(
            select(Customer).where(or_(*conditions)).order_by(Customer.id).limit(1)
        )
        language = lead.locale or organization.default_language
        source = lead.source or translate(language, N_("website form"))
        company_name = lead.company.strip() if lead.company and lead.company.strip() else None
        deal = None
        if customer is not None:
            details: dict[str, Any] = {
                "source": source,
                "company": company_name,
                "review": True,
                "submitted": {"name": lead.name.strip(), "email": email, "phone": phone},
            }
        else:
            customer = Customer(
                name=lead.name.strip(),
                email=email,
                phone=phone,
                language=lead.locale,
                tags=[],
                attributes={},
                other_phones=[],
            )
            session.add(customer)
            await session.flush()
            company = None
            if company_name:
                company = await session.scalar(
                    select(Company).where(func.lower(Company.name) == company_name.lower())
                )
                if company is None:
                    company = Company(name=company_name)
                    session.add(company)
                    await session.flush()
                customer.company_id = company.id
            stage = (await list_stages(session, language))[0]
            deal = Deal(
                title=lead.name.strip() if not company else f"{company.name}: {lead.name.strip()}"[:200],
                customer_id=customer.id,
                company_id=company.id if company else None,
                stage_id=stage.id,
                amount=Decimal(0),
                currency=DEFAULT_CURRENCY,
                source=source,
            )
            session.add(deal)
            await session.flush()
            details = {"source": source, "company": company.name if company else None}
        session.add(
            Activity(
                customer_id=customer.id,
                kind="lead_captured",
                text=lead.message,
                deal_id=deal.id if deal else None,
                details=details,
                source_key=key,
            )
        )
        push(
            session,
            LeadCreated(
                customer_id=customer.id,
                deal_id=deal.id if deal else None,
                customer_name=customer.name,
                company=company_name,
                source=source,
                existing=deal is None,
            ),
            writers_of("crm"),
        )
        await session.flush()
        await rescore(session, customer)
        captured = CapturedLead(
            customer_id=customer.id, deal_id=deal.id if deal else None, existing=deal is None
        )
        try:
            await session.commit()
        except IntegrityError:
            # The same key posted twice at once: the first one stands.
            await session.rollback()
            earlier = await _earlier_lead(session, key)
            if earlier is None:
                raise
            return earlier
        return captured
