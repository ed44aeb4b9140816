"""An organization's CRM settings: lead capture, scoring rules and its own opt-out keywords."""

from __future__ import annotations

import uuid

import msgspec

from crm.models import CrmSettings
from crm.schemas import ScoringRules
from hub.db import HubAsyncSession, organization_row
from hub.kept import Kept
from hub.tasks import kick


async def crm_settings(session: HubAsyncSession) -> CrmSettings:
    return await organization_row(session, CrmSettings, lead_origins=[])


async def update_crm_settings(
    session: HubAsyncSession,
    *,
    lead_origins: list[str] | None,
    scoring: ScoringRules | None,
    opt_out_keywords: list[str] | None = None,
) -> CrmSettings:
    """Change the settings; new scoring rules rescore every customer, in the background."""
    settings = await crm_settings(session)
    if lead_origins is not None:
        settings.lead_origins = list(dict.fromkeys(origin.lower() for origin in lead_origins))
    if opt_out_keywords is not None:
        settings.opt_out_keywords = list(dict.fromkeys(k.strip() for k in opt_out_keywords if k.strip()))
        kept_opt_out_keywords.forget(session.organization_id)
    if scoring is not None:
        settings.scoring = msgspec.to_builtins(scoring)
        organization_id = session.organization_id

        async def rescore_everyone() -> None:
            kept_recent_points.forget(organization_id)  # first contacts score by the new rules
            await kick("crm.rescore_organization", organization_id=str(organization_id))

        session.after_commit(rescore_everyone)
    await session.commit()
    return settings


# Opting out: a customer who writes one of these (and nothing else) receives no more campaigns.
DEFAULT_OPT_OUT_KEYWORDS = (
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "END",
    "QUIT",
    "إلغاء",
    "إلغاء الاشتراك",
    "إيقاف",
    "توقف",
)
kept_opt_out_keywords: Kept[uuid.UUID | None, tuple[str, ...]] = Kept(seconds=30.0)
# The points a first contact scores for writing, kept per organization (see recent_message_factor).
kept_recent_points: Kept[uuid.UUID | None, int] = Kept(seconds=5.0)


def opt_out_keywords_of(settings: CrmSettings) -> list[str]:
    return list(settings.opt_out_keywords or DEFAULT_OPT_OUT_KEYWORDS)
