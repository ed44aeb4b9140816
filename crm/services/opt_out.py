"""Opting out: a customer who writes one of the keywords (and nothing else) receives no more
campaigns."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from crm.models import CrmSettings, Customer
from crm.services.activities import record_activity
from crm.services.settings import DEFAULT_OPT_OUT_KEYWORDS, kept_opt_out_keywords
from hub.db import HubAsyncSession
from hub.i18n import is_keyword

MAX_OPT_OUT_LENGTH = 40  # a longer message is a sentence, never an opt-out


async def asks_to_opt_out(session: HubAsyncSession, text: str | None) -> bool:
    """Whether a customer's message is an opt-out keyword. Checked on every inbound message, so
    the keywords are kept for a while in each process, and long messages are not looked at."""
    if not text or len(text) > MAX_OPT_OUT_LENGTH:
        return False
    keywords = kept_opt_out_keywords.get(session.organization_id)
    if keywords is None:
        stored = await session.scalar(select(CrmSettings.opt_out_keywords))
        keywords = kept_opt_out_keywords.put(
            session.organization_id, tuple(stored or DEFAULT_OPT_OUT_KEYWORDS)
        )
    return is_keyword(text, keywords)


async def opt_out_customer(
    session: HubAsyncSession, customer_id: uuid.UUID, *, message_id: uuid.UUID
) -> None:
    """The customer asked to receive no more campaigns (by `message_id`): marked so, with the
    timeline entry, in the caller's transaction; asked twice, it is recorded once."""
    await session.execute(
        update(Customer)
        .where(Customer.id == customer_id)
        .values(opted_out=True)
        .execution_options(synchronize_session=False)
    )
    await record_activity(
        session, customer_id, "opted_out", {"message_id": str(message_id)}, key=f"opt_out:{message_id}"
    )
