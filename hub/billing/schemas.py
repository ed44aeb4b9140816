"""What billing's API reads and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class PriceOut(msgspec.Struct, kw_only=True):
    interval: str  # month, year
    amount: int  # in the currency's smallest unit (cents)
    currency: str
    display: str  # as the reader's language writes it


class LimitOut(msgspec.Struct, kw_only=True):
    limit: str  # agents, whatsapp_profiles, ...
    name: str  # in the reader's language
    value: int | None  # None: unlimited


class PlanOut(msgspec.Struct, kw_only=True):
    code: str
    name: str  # in the reader's language
    prices: list[PriceOut]
    trial_days: int
    modules: list[str]
    limits: list[LimitOut]


Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]


class TaxId(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A tax id as Stripe types it: sa_vat, ae_trn, eg_tin, eu_vat, gb_vat, us_ein, ..."""

    type: Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2}_[a-z]{2,8}$")]
    value: Annotated[str, msgspec.Meta(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9 .\-/]+$")]


class SubscribeIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    plan: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    interval: Annotated[str, msgspec.Meta(min_length=1, max_length=8)] = "month"
    billing_email: Email
    tax_id: TaxId | None = None


class CheckoutIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    plan: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    interval: Annotated[str, msgspec.Meta(min_length=1, max_length=8)] = "month"
    # Needed when the organization has no billing account yet.
    billing_email: Email | None = None
    tax_id: TaxId | None = None


class AccountIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    billing_email: Email | None = None
    tax_id: TaxId | None = None


class StripePageOut(msgspec.Struct, kw_only=True):
    url: str  # Stripe's page to open: Checkout or the Billing Portal


class UsageOut(msgspec.Struct, kw_only=True):
    limit: str
    name: str  # in the reader's language
    used: int | None  # None: not counted here
    value: int | None  # the limit of the plan in force; None: unlimited


class CardOut(msgspec.Struct, kw_only=True):
    brand: str | None
    last4: str | None
    expires: str | None  # 2029-04


class TaxIdOut(msgspec.Struct, kw_only=True):
    type: str
    value: str


class SubscriptionOut(msgspec.Struct, kw_only=True):
    plan: str | None
    plan_name: str | None
    interval: str | None
    status: str  # none, trialing, active, past_due, unpaid, canceled, incomplete
    current_period_end: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    billing_email: str | None
    tax_id: TaxIdOut | None
    in_force_plan: str | None  # whose limits apply now (the free plan without a subscription)
    restricted: bool  # a payment due too long: reading and receiving only
    card: CardOut | None  # the card invoices are charged to
    pending_plan: str | None  # a downgrade waiting for the period's end
    pending_interval: str | None
    usage: list[UsageOut]


class WebhookAnswer(msgspec.Struct, kw_only=True):
    received: bool
    duplicate: bool


class ChangePlanIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    plan: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    interval: Annotated[str, msgspec.Meta(min_length=1, max_length=8)] = "month"


class CancelIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    at_period_end: bool = True  # False: now


class InvoiceOut(msgspec.Struct, kw_only=True):
    id: str
    number: str | None
    status: str | None  # draft, open, paid, uncollectible, void
    amount_due: int
    amount_paid: int
    currency: str
    display: str  # the amount due, as the reader's language writes money
    created: datetime
    hosted_invoice_url: str | None
    invoice_pdf: str | None


class CardSetupIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Needed when the organization has no billing account yet.
    billing_email: Email | None = None


class CardSetupOut(msgspec.Struct, kw_only=True):
    setup_intent: str
    client_secret: str  # for Stripe.js, in the browser
    publishable_key: str | None  # Stripe.js's key; None: the installation takes no cards here
    stripe_js: str  # where Stripe.js is loaded from


class CardConfirmIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    setup_intent: Annotated[str, msgspec.Meta(min_length=6, max_length=200)]
