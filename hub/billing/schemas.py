"""What billing's API reads and answers."""

from __future__ import annotations

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
