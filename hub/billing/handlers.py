"""Loaded at start in every process: billing hears every usage count (for the 80% and 100%
marks of the plan's limits) and e-mails admins what their billing needs them to know."""

from __future__ import annotations

from hub import events
from hub.billing.events import AdminsToldOfBilling
from hub.billing.services.notices import mail_admins
from hub.billing.services.usage import note_count
from hub.runtime import current
from hub.services.usage import usage_listeners

usage_listeners.append(note_count)


@events.handles(AdminsToldOfBilling, name="billing.mail_admins")
async def mail_admins_of_billing(event: AdminsToldOfBilling) -> None:
    await mail_admins(current(), event)
