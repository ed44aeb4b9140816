"""The organization's invoices, read from Stripe page by page (Stripe keeps them; the hub does
not copy them)."""

from __future__ import annotations

import re
from typing import Any

from hub.billing import gateway
from hub.billing.services.subscriptions import subscription_of
from hub.db import HubAsyncSession
from hub.pagination import decode_position, encode_position
from hub.runtime import Runtime

_INVOICE_ID = re.compile(r"^in_[A-Za-z0-9]{1,200}$")


def _invoice_id(value: str) -> str:
    if not isinstance(value, str) or not _INVOICE_ID.match(value):
        raise ValueError(value)
    return value


async def invoices_page(
    runtime: Runtime, session: HubAsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; the cursor says after which invoice the page starts."""
    after = decode_position(cursor, _invoice_id)[0] if cursor else None
    current = await subscription_of(session)
    if current is None:
        return [], None
    params: dict[str, Any] = {"customer": current.stripe_customer_id, "limit": limit}
    if after is not None:
        params["starting_after"] = after
    listed = await gateway.client(runtime.settings).v1.invoices.list_async(params)  # type: ignore[arg-type]  # built above, Stripe's params type
    rows = [invoice.to_dict() for invoice in listed.data]
    return rows, encode_position(rows[-1]["id"]) if listed.has_more and rows else None
