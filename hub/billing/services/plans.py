"""The plans the installation sells: read from the operator's plans file, kept in Stripe as a
product with a monthly and a yearly price each, and listed to organizations."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select

from hub.billing import gateway
from hub.billing.models import BillingPlan
from hub.db import HubAsyncSession
from hub.permissions import PLAN_MODULES
from hub.runtime import Runtime

log = structlog.get_logger(__name__)

SHIPPED_PLANS = Path(__file__).resolve().parent.parent / "plans.toml"
LIMITS = (
    "agents",
    "whatsapp_profiles",
    "api_channels",
    "messages_per_month",
    "campaign_recipients_per_month",
    "ai_credits_per_month",
    "storage_mb",
)
INTERVALS = ("month", "year")
LANGUAGES = ("en", "ar")
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_CURRENCY = re.compile(r"^[a-z]{3}$")


class PlansFileError(ValueError):
    """A plans file that cannot be used, with the line to look at."""


@dataclass(frozen=True)
class PlanSpec:
    code: str
    names: dict[str, str]
    currency: str
    monthly: int
    yearly: int
    trial_days: int
    modules: tuple[str, ...]
    limits: dict[str, int | None]  # None: unlimited
    position: int

    def amount(self, interval: str) -> int:
        return self.monthly if interval == "month" else self.yearly


def read_plans(path: Path) -> list[PlanSpec]:
    """The plans of a file, checked whole: the first fault found is named with its line, and
    nothing is used from a file with one."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PlansFileError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PlansFileError(f"{path}: {error}") from None
    lines = text.splitlines()

    def fault(
        message: str, code: str | None = None, key: str | None = None, table: str = ""
    ) -> PlansFileError:
        line = _line_of(lines, code, key, table)
        return PlansFileError(f"{path}, line {line}: {message}" if line else f"{path}: {message}")

    default_currency = data.get("currency", "usd")
    plans = data.get("plans")
    if not isinstance(plans, dict) or not plans:
        raise fault("the file names no plans ([plans.<code>] tables)")
    specs = []
    for position, (code, plan) in enumerate(plans.items()):
        if not _CODE.match(code):
            raise fault(f"plan code {code!r} must be lower-case letters, digits, - or _", code)
        if not isinstance(plan, dict):
            raise fault(f"plans.{code} must be a table", code)
        names = plan.get("name")
        if isinstance(names, str):
            names = dict.fromkeys(LANGUAGES, names)
        if not isinstance(names, dict) or not all(
            isinstance(names.get(language), str) and names[language].strip() for language in LANGUAGES
        ):
            raise fault(f"plans.{code}.name needs a name in each of {', '.join(LANGUAGES)}", code, "name")
        prices = {}
        for key in ("monthly", "yearly"):
            if key not in plan:
                raise fault(f"plans.{code}.{key} (the price) is missing", code)
            price = plan[key]
            if isinstance(price, bool) or not isinstance(price, int) or price < 0:
                raise fault(f"plans.{code}.{key} must be a whole amount of 0 or more", code, key)
            prices[key] = price
        currency = plan.get("currency", default_currency)
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            raise fault(f"plans.{code}.currency must be a three-letter code such as usd", code, "currency")
        trial_days = plan.get("trial_days", 0)
        if isinstance(trial_days, bool) or not isinstance(trial_days, int) or not 0 <= trial_days <= 730:
            raise fault(f"plans.{code}.trial_days must be from 0 to 730", code, "trial_days")
        modules = plan.get("modules", [])
        if not isinstance(modules, list) or any(module not in PLAN_MODULES for module in modules):
            raise fault(f"plans.{code}.modules may hold only {', '.join(PLAN_MODULES)}", code, "modules")
        given = plan.get("limits", {})
        if not isinstance(given, dict):
            raise fault(f"plans.{code}.limits must be a table", code, "limits")
        limits: dict[str, int | None] = {}
        for key, value in given.items():
            if key not in LIMITS:
                raise fault(
                    f"plans.{code}.limits.{key} is not a limit ({', '.join(LIMITS)})", code, key, "limits"
                )
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise fault(
                    f"plans.{code}.limits.{key} must be 0 or more (or -1, unlimited)", code, key, "limits"
                )
            limits[key] = None if value == -1 else value
        for key in LIMITS:
            limits.setdefault(key, None)
        specs.append(
            PlanSpec(
                code=code,
                names={language: names[language].strip() for language in LANGUAGES},
                currency=currency,
                monthly=prices["monthly"],
                yearly=prices["yearly"],
                trial_days=trial_days,
                modules=tuple(dict.fromkeys(modules)),
                limits=limits,
                position=position,
            )
        )
    return specs


def _line_of(lines: list[str], code: str | None, key: str | None, table: str) -> int | None:
    """The line of a plan's key (or of its table, when the key is not there), counted from 1."""
    if code is None:
        return None
    header = f"plans.{code}" + (f".{table}" if table else "")
    inside, header_line = False, None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped.strip("[] ") == header
            if inside:
                header_line = number
            continue
        if inside and key is not None and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return header_line


async def sync_plans(runtime: Runtime, specs: list[PlanSpec]) -> list[BillingPlan]:
    """Make Stripe and the plans table match the file; safe to run again at any time.

    Each plan is a Stripe product of its own id, with one price per interval whose id says its
    amount and currency: a changed price is a new price (Stripe's prices never change), the old
    one is made inactive, and subscriptions on it keep it until they change plan."""
    client = gateway.client(runtime.settings)
    synced = []
    for spec in specs:
        product_id = gateway.product_id(spec.code)
        await gateway.ensure_product(client, product_id, name=spec.names["en"], code=spec.code)
        prices = {}
        for interval in INTERVALS:
            prices[interval] = await gateway.ensure_price(
                client,
                product_id,
                code=spec.code,
                interval=interval,
                amount=spec.amount(interval),
                currency=spec.currency,
            )
        synced.append((spec, product_id, prices))
    async with runtime.db.system_session() as session:
        existing = {plan.code: plan for plan in await session.scalars(select(BillingPlan))}
        kept = []
        for spec, product_id, prices in synced:
            plan = existing.pop(spec.code, None) or BillingPlan(code=spec.code)
            plan.names = spec.names
            plan.currency = spec.currency
            plan.monthly_amount, plan.yearly_amount = spec.monthly, spec.yearly
            plan.trial_days = spec.trial_days
            plan.modules = list(spec.modules)
            plan.limits = spec.limits
            plan.position = spec.position
            plan.active = True
            plan.stripe_product_id = product_id
            plan.stripe_monthly_price_id, plan.stripe_yearly_price_id = prices["month"], prices["year"]
            session.add(plan)
            kept.append(plan)
        for gone in existing.values():  # no longer in the file: not offered, kept for who has it
            gone.active = False
        await session.commit()
    log.info("billing plans synced", plans=[spec.code for spec in specs])
    return kept


async def offered_plans(session: HubAsyncSession) -> list[BillingPlan]:
    """The plans on offer, in the file's order."""
    return list(
        await session.scalars(
            select(BillingPlan).where(BillingPlan.active.is_(True)).order_by(BillingPlan.position)
        )
    )


def limit_of(plan: BillingPlan, limit: str) -> int | None:
    value: Any = (plan.limits or {}).get(limit)
    return value if isinstance(value, int) else None


def plan_name(plan: BillingPlan, language: str) -> str:
    """The plan's name in this language (English, else its code, where the file has none)."""
    names = plan.names or {}
    return names.get(language) or names.get("en") or plan.code
