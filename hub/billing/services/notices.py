"""What admins are e-mailed about their billing, each in their own language: a trial ending, a
payment that failed (and when the organization is restricted if it stays unpaid), a card about to
expire, the plan changed. Sent after the commit that decided it, through the outbox."""

from __future__ import annotations

from datetime import date, timedelta

import structlog
from sqlalchemy import select

from hub.billing.events import AdminsToldOfBilling
from hub.billing.models import BillingPlan, Subscription
from hub.billing.services.plans import plan_name
from hub.db import utcnow
from hub.events import publish
from hub.i18n import N_, choose_language, format_date, format_money, translate
from hub.mail import send_mail
from hub.models import Organization, User
from hub.runtime import Runtime

log = structlog.get_logger(__name__)

SUBJECTS = {
    "trial_ending": N_("Your trial of {organization} ends on {when}"),
    "payment_failed": N_("A payment for {organization} failed"),
    "payment_action_required": N_("A payment for {organization} needs your confirmation"),
    "card_expiring": N_("The card {organization} pays with expires soon"),
    "plan_changed": N_("{organization} is now on the {plan} plan"),
}
BODIES = {
    "trial_ending": N_(
        "The trial of {organization} ends on {when}. Add a card on the billing page to keep "
        "your plan without a pause."
    ),
    "payment_failed": N_(
        "We could not charge {amount} for {organization}. Stripe will try again; if it is still "
        "unpaid after {grace} days the organization can only read and receive messages. Check "
        "the card on the billing page."
    ),
    "payment_action_required": N_(
        "Your bank asks you to confirm the payment of {amount} for {organization}. Open the "
        "invoice to confirm it:\n\n{link}"
    ),
    "card_expiring": N_(
        "The card ending {last4} that pays for {organization} expires at the end of {when}. "
        "Add a new card on the billing page."
    ),
    "plan_changed": N_("{organization} is now on the {plan} plan. Its limits apply from now on."),
}


async def mail_admins(runtime: Runtime, notice: AdminsToldOfBilling) -> None:
    """Each active admin gets the notice in their language."""
    async with runtime.db.session(notice.organization_id) as session:
        organization = await session.get(Organization, notice.organization_id)
        if organization is None:
            return
        admins = list(
            await session.scalars(select(User).where(User.role == "admin", User.is_active.is_(True)))
        )
        account = await session.scalar(select(Subscription))
        plan = (
            await session.scalar(select(BillingPlan).where(BillingPlan.code == notice.plan))
            if notice.plan
            else None
        )
    for admin in admins:
        language = choose_language(
            preferred=admin.preferred_language,
            accept_language=None,
            organization_default=organization.default_language,
        )
        words = {
            "organization": organization.name,
            "plan": plan_name(plan, language) if plan is not None else notice.plan or "",
            "when": _when(notice, language),
            "amount": format_money(notice.amount or 0, notice.currency or "usd", language),
            "grace": runtime.settings.billing_grace_days,
            "last4": (account.card_last4 if account is not None else None) or "",
            "link": notice.link or "",
        }
        await send_mail(
            runtime.settings,
            to=admin.email,
            subject=translate(language, SUBJECTS[notice.notice], **words),
            body=translate(language, BODIES[notice.notice], **words),
        )
    log.info("admins told of billing", notice=notice.notice, admins=len(admins))


def _when(notice: AdminsToldOfBilling, language: str) -> str:
    if not notice.when:
        return ""
    day = date.fromisoformat(notice.when)
    if notice.notice == "card_expiring":
        return format_date(day, language, style="MMMM y")
    return format_date(day, language, style="long")


async def warn_expiring_cards(runtime: Runtime) -> int:
    """Admins of a subscription whose card expires this month or the next are told, once per
    card expiry."""
    today = utcnow().date()
    soon = {today.strftime("%Y-%m"), (today.replace(day=1) + timedelta(days=32)).strftime("%Y-%m")}
    async with runtime.db.system_session() as system:
        due = list(
            await system.execute(
                select(Subscription.organization_id, Subscription.card_expires).where(
                    Subscription.card_expires.in_(soon),
                    Subscription.status.in_(("trialing", "active", "past_due")),
                    (Subscription.card_warned_for.is_(None))
                    | (Subscription.card_warned_for != Subscription.card_expires),
                )
            )
        )
    for organization_id, expires in due:
        async with runtime.db.session(organization_id) as session:
            account = await session.scalar(select(Subscription))
            if account is None or account.card_expires != expires or account.card_warned_for == expires:
                continue
            account.card_warned_for = expires
            await publish(
                session,
                AdminsToldOfBilling(
                    organization_id=organization_id, notice="card_expiring", when=f"{expires}-01"
                ),
            )
            await session.commit()
    return len(due)
