"""Billing's HTTP API (`/api/billing`): admins act, managers read. Without STRIPE_SECRET_KEY every
endpoint answers that billing is not configured here."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from hub.auth import CurrentUser
from hub.billing import services
from hub.billing.schemas import PlanOut
from hub.billing.views import plan_out
from hub.controllers import SessionDep
from hub.errors import NotFound, request_language
from hub.i18n import N_
from hub.permissions import requires
from hub.runtime import runtime_of


async def billing_configured(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    if not runtime_of(connection).settings.stripe_secret_key:
        raise NotFound(N_("Billing is not configured on this installation."))


class BillingController(Controller):
    path = "/api/billing"
    tags = ["billing"]  # noqa: RUF012
    guards = [billing_configured]  # noqa: RUF012

    @get("/plans", guards=[requires("billing", "read")], errors=(404,))
    async def plans(self, request: Request[CurrentUser, Any, Any], session: SessionDep) -> list[PlanOut]:
        language = request_language(request)
        return [plan_out(plan, language) for plan in await services.offered_plans(session)]


ROUTES = [BillingController]
