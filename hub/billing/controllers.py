"""Billing's HTTP API (`/api/billing`): admins act, managers read. Without STRIPE_SECRET_KEY every
endpoint answers that billing is not configured here."""

from __future__ import annotations

from typing import Annotated, Any

import stripe
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_502_BAD_GATEWAY
from sqlalchemy import select

from hub.auth import CurrentUser
from hub.billing import services
from hub.billing.models import BillingPlan
from hub.billing.schemas import (
    AccountIn,
    CancelIn,
    CardConfirmIn,
    CardSetupIn,
    CardSetupOut,
    ChangePlanIn,
    CheckoutIn,
    InvoiceOut,
    PlanOut,
    StripePageOut,
    SubscribeIn,
    SubscriptionOut,
    WebhookAnswer,
)
from hub.billing.views import invoice_out, plan_out, subscription_out
from hub.controllers import Cursor, RuntimeDep, SessionDep, public_url
from hub.db import HubAsyncSession
from hub.errors import (
    HubError,
    NotFound,
    PaymentRequired,
    hub_error_handler,
    request_language,
    service_error_handler,
)
from hub.i18n import N_
from hub.permissions import requires
from hub.runtime import runtime_of
from hub.schemas import Page

log = structlog.get_logger(__name__)


async def billing_configured(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    if not runtime_of(connection).settings.stripe_secret_key:
        raise NotFound(N_("Billing is not configured on this installation."))


def stripe_error_handler(request: Request[Any, Any, Any], error: stripe.StripeError) -> Response[Any]:
    """What Stripe refused, said to the admin: a card needed or declined is theirs to fix (402);
    Stripe unreachable is a service away (503); anything else is logged and 502."""
    if isinstance(error, stripe.APIConnectionError):
        return service_error_handler(request, ConnectionError(str(error)))
    if isinstance(error, stripe.CardError) or (
        isinstance(error, stripe.InvalidRequestError)
        and "payment" in str(error.user_message or error).lower()
    ):
        return hub_error_handler(
            request,
            PaymentRequired(
                N_("This plan needs a card: add a payment method first."), field="payment_method"
            ),
        )
    log.error(
        "stripe refused a request", error=type(error).__name__, code=error.code, status=error.http_status
    )
    return hub_error_handler(
        request, HubError(N_("The payment service refused the request."), status_code=HTTP_502_BAD_GATEWAY)
    )


class BillingController(Controller):
    path = "/api/billing"
    tags = ["billing"]  # noqa: RUF012
    guards = [billing_configured]  # noqa: RUF012
    exception_handlers = {stripe.StripeError: stripe_error_handler}  # noqa: RUF012

    @get("/plans", guards=[requires("billing", "read")], errors=(404,))
    async def plans(self, request: Request[CurrentUser, Any, Any], session: SessionDep) -> list[PlanOut]:
        language = request_language(request)
        return [plan_out(plan, language) for plan in await services.offered_plans(session)]

    @get("/subscription", guards=[requires("billing", "read")], errors=(404,))
    async def subscription(
        self, request: Request[CurrentUser, Any, Any], session: SessionDep
    ) -> SubscriptionOut:
        return await _subscription_view(session, request_language(request))

    @post("/subscribe", guards=[requires("billing", "write")], status_code=201, errors=(402, 404, 409))
    async def subscribe(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: JSONBody[SubscribeIn],
    ) -> SubscriptionOut:
        await services.subscribe(
            runtime,
            session,
            plan_code=data.plan,
            interval=data.interval,
            billing_email=data.billing_email,
            tax_id=data.tax_id,
        )
        return await _subscription_view(session, request_language(request))

    @post("/checkout", guards=[requires("billing", "write")], status_code=201, errors=(404, 409))
    async def checkout(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: JSONBody[CheckoutIn],
    ) -> StripePageOut:
        """Stripe's Checkout page for a first subscription (the card typed there); the webhooks
        keep the subscription it starts."""
        url = await services.start_checkout(
            runtime,
            session,
            plan_code=data.plan,
            interval=data.interval,
            billing_email=data.billing_email,
            tax_id=data.tax_id,
            base_url=public_url(request),
        )
        return StripePageOut(url=url)

    @post("/portal", guards=[requires("billing", "write")], status_code=201, errors=(404, 409))
    async def portal(
        self, request: Request[CurrentUser, Any, Any], runtime: RuntimeDep, session: SessionDep
    ) -> StripePageOut:
        """Stripe's Billing Portal for the organization's customer: card, invoices, plan."""
        return StripePageOut(url=await services.open_portal(runtime, session, base_url=public_url(request)))

    @post("/account", guards=[requires("billing", "write")], status_code=200, errors=(404,))
    async def account(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: JSONBody[AccountIn],
    ) -> SubscriptionOut:
        """The billing e-mail and tax id Stripe prints on the invoices."""
        await services.billing_account(runtime, session, data.billing_email, data.tax_id)
        await session.commit()
        return await _subscription_view(session, request_language(request))

    @post("/change-plan", guards=[requires("billing", "write")], status_code=200, errors=(402, 404, 409))
    async def change_plan(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: JSONBody[ChangePlanIn],
    ) -> SubscriptionOut:
        await services.change_plan(runtime, session, plan_code=data.plan, interval=data.interval)
        return await _subscription_view(session, request_language(request))

    @post("/cancel", guards=[requires("billing", "write")], status_code=200, errors=(404, 409))
    async def cancel(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: JSONBody[CancelIn],
    ) -> SubscriptionOut:
        await services.cancel(runtime, session, at_period_end=data.at_period_end)
        return await _subscription_view(session, request_language(request))

    @post("/payment-method", guards=[requires("billing", "write")], status_code=201, errors=(404,))
    async def start_card_setup(
        self, runtime: RuntimeDep, session: SessionDep, data: JSONBody[CardSetupIn]
    ) -> CardSetupOut:
        intent = await services.start_card_setup(runtime, session, data.billing_email)
        return CardSetupOut(
            setup_intent=intent.id,
            client_secret=intent.client_secret or "",
            publishable_key=runtime.settings.stripe_publishable_key,
            stripe_js=runtime.settings.stripe_js_url,
        )

    @post(
        "/payment-method/confirm", guards=[requires("billing", "write")], status_code=200, errors=(404, 409)
    )
    async def use_confirmed_card(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        data: JSONBody[CardConfirmIn],
    ) -> SubscriptionOut:
        await services.use_confirmed_card(runtime, session, services.check_setup_intent_id(data.setup_intent))
        return await _subscription_view(session, request_language(request))

    @get("/invoices", guards=[requires("billing", "read")], errors=(404,))
    async def invoices(
        self,
        request: Request[CurrentUser, Any, Any],
        runtime: RuntimeDep,
        session: SessionDep,
        cursor: Cursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> Page[InvoiceOut]:
        language = request_language(request)
        rows, next_cursor = await services.invoices_page(runtime, session, cursor=cursor, limit=limit)
        return Page(items=[invoice_out(row, language) for row in rows], next_cursor=next_cursor)

    @post(
        "/webhooks/stripe",
        exclude_from_auth=True,
        status_code=200,
        request_max_body_size=1024 * 1024,
        errors=(404,),
    )
    async def stripe_webhook(self, request: Request[Any, Any, Any], runtime: RuntimeDep) -> WebhookAnswer:
        applied = await services.receive(
            runtime, await request.body(), request.headers.get(services.SIGNATURE_HEADER)
        )
        return WebhookAnswer(received=True, duplicate=not applied)


async def _subscription_view(session: HubAsyncSession, language: str) -> SubscriptionOut:
    current = await services.subscription_of(session)
    plan = None
    if current is not None and current.plan_code:
        plan = await session.scalar(select(BillingPlan).where(BillingPlan.code == current.plan_code))
    in_force = await services.plan_in_force(session)
    return subscription_out(current, plan, in_force, await services.usage_now(session), language)


ROUTES = [BillingController]
