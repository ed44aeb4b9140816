"""What the API carries of deals."""

from __future__ import annotations

from crm.models import Deal
from crm.schemas import DealOut


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
