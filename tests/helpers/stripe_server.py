"""localstripe, started the way the billing tests use it, with the pieces of Stripe's behaviour
it lacks and the hub relies on: a subscription made with a trial is `trialing` until the trial
ends, with its `trial_start` and `trial_end` (localstripe leaves it `incomplete`); and Checkout
and Billing Portal sessions, made as Stripe makes them (for a customer it has, with Stripe's
required fields), kept to be read back. Run as
`python -m tests.helpers.stripe_server --port N --from-scratch`."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError

_made = resources.Subscription.__init__


def _with_trial(self: Any, *args: Any, **kwargs: Any) -> None:
    _made(self, *args, **kwargs)
    days = self.trial_period_days
    if self.trial_end is not None or days is not None:
        now = int(time.time())
        self.trial_start = now
        self.trial_end = self.trial_end or now + int(days) * 86400
        self.status = "trialing"


resources.Subscription.__init__ = _with_trial  # type: ignore[method-assign]

pages: dict[str, dict[str, Any]] = {}


def _page(data: dict[str, Any], kind: str, prefix: str, required: tuple[str, ...]) -> web.Response:
    missing = [name for name in required if not data.get(name)]
    if missing:
        raise UserError(400, f"Missing required param: {missing[0]}.")
    resources.Customer._api_retrieve(data["customer"])  # 404 for a customer Stripe does not have
    page_id = prefix + resources.random_id(24)
    page = {
        "id": page_id,
        "object": kind,
        "created": int(time.time()),
        "livemode": False,
        "url": f"https://stripe.test/{kind}/{page_id}",
        **data,
    }
    pages[page_id] = page
    return server.json_response(page)


async def create_checkout_session(request: web.Request) -> web.Response:
    data = await server.get_post_data(request) or {}
    items = data.get("line_items") or []
    if data.get("mode") == "subscription" and not all(item.get("price") for item in items):
        raise UserError(400, "Missing required param: line_items[0][price].")
    for item in items:
        resources.Plan._api_retrieve(item["price"])  # a plan's id is also a price's
    return _page(
        {"status": "open", "subscription": None, **data},
        "checkout.session",
        "cs_test_",
        ("customer", "mode", "line_items", "success_url"),
    )


async def create_portal_session(request: web.Request) -> web.Response:
    data = await server.get_post_data(request) or {}
    return _page(data, "billing_portal.session", "bps_", ("customer",))


async def read_page(request: web.Request) -> web.Response:
    page = pages.get(request.match_info["id"])
    if page is None:
        raise UserError(404, "No such session")
    return server.json_response(page)


server.app.router.add_post("/v1/checkout/sessions", create_checkout_session)
server.app.router.add_get("/v1/checkout/sessions/{id}", read_page)
server.app.router.add_post("/v1/billing_portal/sessions", create_portal_session)
# Stripe cannot read a portal session back; this server can, so a test sees what was asked.
server.app.router.add_get("/_config/billing_portal/sessions/{id}", read_page)

if __name__ == "__main__":
    server.start()
