"""Campaigns as drafts: creating and changing them (what may change once they send), reading
them, previews of their messages, and the pacing of each sending channel."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import structlog
from msgspec import UNSET
from sqlalchemy import Select, delete, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError

from campaigns import templates
from campaigns.events import CampaignUpdated
from campaigns.models import Campaign, CampaignChannel, ChannelPacing
from campaigns.pacing import rules_of
from campaigns.schemas import AudienceIn, CampaignIn, CampaignOut, CampaignUpdate, PacingIn, PacingOut
from campaigns.views import STATUS_NAMES, campaign_out, pacing_out, push_campaign
from channels.models import Channel
from crm.models import AttributeDefinition, Company, Customer
from crm.services import get_segment
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, new_id, on_postgres, utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_
from hub.models import Media, Organization
from hub.pagination import paginate
from hub.tasks import kick

log = structlog.get_logger(__name__)


async def channel_ids_of(session: HubAsyncSession, campaign_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        await session.scalars(
            select(CampaignChannel.channel_id)
            .where(CampaignChannel.campaign_id == campaign_id)
            .order_by(CampaignChannel.id)
        )
    )


async def hold_sends(session: HubAsyncSession, campaign_id: uuid.UUID, *, exclusive: bool) -> None:
    """Senders hold a campaign's gate shared while they claim a recipient; a change of its status
    holds it alone, so it waits for the claims under way and none begins after it. A lock of its
    own, not the campaign's row: PostgreSQL queues it fairly, and the counters written to the row
    never wait for it. SQLite writes one transaction at a time, which gives the same."""
    if not on_postgres(session):
        return
    key = campaign_id.int & 0x7FFFFFFF
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(sql_text(f"SELECT {function}(:space, :key)"), {"space": GATE_SPACE, "key": key})


GATE_SPACE = 0x6361  # the advisory lock space of campaign gates


async def get_campaign(session: HubAsyncSession, campaign_id: uuid.UUID, *, lock: bool = False) -> Campaign:
    statement = select(Campaign).where(Campaign.id == campaign_id)
    if lock:
        await hold_sends(session, campaign_id, exclusive=True)
        statement = statement.with_for_update()
    campaign = await session.scalar(statement)
    if campaign is None:
        raise NotFound()
    return campaign


async def view(session: HubAsyncSession, campaign: Campaign, language: str) -> CampaignOut:
    return campaign_out(campaign, await channel_ids_of(session, campaign.id), language)


async def list_campaigns(
    session: HubAsyncSession, *, status: list[str], cursor: str | None, limit: int
) -> tuple[list[Campaign], str | None]:
    statement: Select[Any] = select(Campaign)
    if status:
        statement = statement.where(Campaign.status.in_(status))
    rows, next_cursor = await paginate(session, statement, Campaign.id, cursor=cursor, limit=limit)
    return [row[0] for row in rows], next_cursor


async def _check_channels(session: HubAsyncSession, channel_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(channel_ids))
    found = set(await session.scalars(select(Channel.id).where(Channel.id.in_(wanted))))
    for channel_id in wanted:
        if channel_id not in found:
            raise InvalidInput(N_("There is no channel {id}."), field="channel_ids", id=str(channel_id))
    return wanted


async def _check_template(session: HubAsyncSession, template: Mapping[Any, str]) -> None:
    keys = set(await session.scalars(select(AttributeDefinition.key)))
    found = templates.problems(template, keys)
    if found:
        problem = found[0]
        raise InvalidInput(problem.message, field=problem.field, **problem.arguments)


async def _check_media(session: HubAsyncSession, media_id: uuid.UUID | None, field: str) -> Media | None:
    if media_id is None:
        return None
    media = await session.get(Media, media_id)
    if media is None:
        raise InvalidInput(N_("There is no file {id}."), field=field, id=str(media_id))
    return media


async def _check_audience(session: HubAsyncSession, audience: AudienceIn) -> dict[str, Any]:
    given = [
        name for name in ("segment_id", "customer_ids", "media_id") if getattr(audience, name) is not None
    ]
    if len(given) != 1:
        raise InvalidInput(
            N_("Choose the recipients in one way: a segment, customer ids or a CSV file."), field="audience"
        )
    if audience.customer_ids is not None:
        if not audience.customer_ids:
            raise InvalidInput(N_("The list of recipients is empty."), field="audience.customer_ids")
        return {"customer_ids": [str(i) for i in dict.fromkeys(audience.customer_ids)]}
    if audience.segment_id is not None:
        try:
            await get_segment(session, audience.segment_id)
        except NotFound:
            raise InvalidInput(
                N_("There is no segment {id}."), field="audience.segment_id", id=str(audience.segment_id)
            ) from None
        return {"segment_id": str(audience.segment_id)}
    media = await _check_media(session, audience.media_id, "audience.media_id")
    assert media is not None
    if media.kind != "document" or not media.content_type.startswith("text/"):
        raise InvalidInput(N_("The recipients file must be a CSV file."), field="audience.media_id")
    return {
        "media_id": str(media.id),
        "phone_column": audience.phone_column,
        "name_column": audience.name_column,
    }


async def _time_zone(session: HubAsyncSession) -> str:
    return await session.scalar(select(Organization.time_zone)) or "UTC"


async def check_start(session: HubAsyncSession, starts_at: datetime | None, field: str) -> datetime | None:
    """A start time without a zone is the organization's local time; one in the past is refused."""
    if starts_at is None:
        return None
    if starts_at.tzinfo is None:
        starts_at = starts_at.replace(tzinfo=ZoneInfo(await _time_zone(session)))
    starts_at = starts_at.astimezone(UTC)
    if starts_at < utcnow() - timedelta(minutes=1):
        raise InvalidInput(N_("The start time has passed."), field=field)
    return starts_at


def _check_window(start: str | None, end: str | None) -> None:
    if (start is None) != (end is None):
        raise InvalidInput(N_("Give both ends of the sending window, or neither."), field="window_end")
    if start is not None and start == end:
        raise InvalidInput(
            N_("The sending window cannot start and end at the same time."), field="window_end"
        )


async def _set_channels(session: HubAsyncSession, campaign: Campaign, channel_ids: list[uuid.UUID]) -> None:
    await session.execute(
        delete(CampaignChannel)
        .where(CampaignChannel.campaign_id == campaign.id)
        .execution_options(synchronize_session=False)
    )
    for channel_id in channel_ids:
        session.add(CampaignChannel(campaign_id=campaign.id, channel_id=channel_id))


def _build_after_commit(session: HubAsyncSession, campaign: Campaign) -> None:
    organization_id, campaign_id = campaign.organization_id, campaign.id

    async def build() -> None:
        await kick(
            "campaigns.build_audience", organization_id=str(organization_id), campaign_id=str(campaign_id)
        )

    session.after_commit(build)


async def create_campaign(session: HubAsyncSession, actor: CurrentUser, data: CampaignIn) -> Campaign:
    channel_ids = await _check_channels(session, data.channel_ids)
    await _check_template(session, dict(data.template))
    await _check_media(session, data.media_id, "media_id")
    audience = await _check_audience(session, data.audience)
    starts_at = await check_start(session, data.starts_at, "starts_at")
    _check_window(data.window_start, data.window_end)
    campaign = Campaign(
        id=new_id(),
        name=data.name.strip(),
        status="draft",
        template=dict(data.template),
        media_id=data.media_id,
        audience=audience,
        audience_status="building",
        audience_report={},
        starts_at=starts_at,
        window_start=data.window_start,
        window_end=data.window_end,
        avoid_repeats=data.avoid_repeats,
        failure_window=data.failure_window,
        failure_threshold=data.failure_threshold,
        created_by=actor.id,
        pause_details={},
    )
    session.add(campaign)
    await session.flush()
    await _set_channels(session, campaign, channel_ids)
    _build_after_commit(session, campaign)
    await session.commit()
    return campaign


# Fields that may still change once a campaign has started, and once it has finished.
CHANGEABLE_WHILE_SENDING = {
    "name",
    "window_start",
    "window_end",
    "avoid_repeats",
    "failure_window",
    "failure_threshold",
}
CHANGEABLE_WHEN_FINISHED = {"name"}


async def update_campaign(session: HubAsyncSession, campaign_id: uuid.UUID, data: CampaignUpdate) -> Campaign:
    campaign = await get_campaign(session, campaign_id, lock=True)
    changes = {name: value for name, value in msgspec.structs.asdict(data).items() if value is not UNSET}
    allowed = None
    if campaign.status in ("running", "paused"):
        allowed = CHANGEABLE_WHILE_SENDING
    elif campaign.status in ("completed", "cancelled"):
        allowed = CHANGEABLE_WHEN_FINISHED
    for name in changes:
        if allowed is not None and name not in allowed:
            raise Conflict(
                N_("A campaign that is {status} cannot change this any more."),
                field=name,
                status=STATUS_NAMES[campaign.status],
            )
    if "name" in changes:
        campaign.name = changes["name"].strip()
    if "channel_ids" in changes:
        await _set_channels(session, campaign, await _check_channels(session, changes["channel_ids"]))
    if "template" in changes:
        await _check_template(session, dict(changes["template"]))
        campaign.template = dict(changes["template"])
    if "media_id" in changes:
        await _check_media(session, changes["media_id"], "media_id")
        campaign.media_id = changes["media_id"]
    if "audience" in changes:
        if campaign.audience_status == "building":
            raise Conflict(
                N_("The recipients are still being counted; try again in a moment."), field="audience"
            )
        campaign.audience = await _check_audience(session, data.audience)  # type: ignore[arg-type]  # the checked audience is stored as JSON
        campaign.audience_status, campaign.audience_report, campaign.total = "building", {}, 0
        _build_after_commit(session, campaign)
    if "starts_at" in changes:
        campaign.starts_at = await check_start(session, changes["starts_at"], "starts_at")
    for name in ("window_start", "window_end", "avoid_repeats", "failure_window", "failure_threshold"):
        if name in changes:
            setattr(campaign, name, changes[name])
    _check_window(campaign.window_start, campaign.window_end)
    if campaign.status == "scheduled" and "starts_at" in changes:
        from campaigns.lifecycle import schedule_start  # lifecycle builds on this module

        await schedule_start(session, campaign)
    push_campaign(session, CampaignUpdated(campaign_id=campaign.id, status=campaign.status))
    await session.commit()
    return campaign


async def delete_campaign(session: HubAsyncSession, campaign_id: uuid.UUID) -> None:
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status == "running":
        raise Conflict(N_("Pause or cancel the campaign before deleting it."), field="status")
    await session.delete(campaign)
    await session.commit()


async def ensure_pacing(session: HubAsyncSession, channel_ids: list[uuid.UUID]) -> None:
    """Every sending channel has its pacing row, made once and shared from then on."""
    have = set(
        await session.scalars(
            select(ChannelPacing.channel_id).where(ChannelPacing.channel_id.in_(channel_ids))
        )
    )
    for channel_id in channel_ids:
        if channel_id not in have:
            try:
                async with session.begin_nested():
                    session.add(ChannelPacing(channel_id=channel_id, rules={}))
            except IntegrityError:
                pass  # made by a campaign starting at the same moment


def wake_channels(session: HubAsyncSession, channel_ids: list[uuid.UUID]) -> None:
    """After commit, start a sender on each channel (one that is already sending keeps its lease)."""
    organization_id = session.organization_id

    async def wake() -> None:
        for channel_id in channel_ids:
            await kick(
                "campaigns.send_on_channel", organization_id=str(organization_id), channel_id=str(channel_id)
            )

    session.after_commit(wake)


SAMPLE = {"name": "Sara Ahmed", "first_name": "Sara", "last_name": "Ahmed", "phone": "+966500000000"}


async def preview(
    session: HubAsyncSession, template: Mapping[Any, str], customer_id: uuid.UUID | None
) -> dict[str, str]:
    """Each language's message as one customer (or a sample one) would receive it."""
    await _check_template(session, template)
    values = dict(SAMPLE)
    seed = "preview"
    if customer_id is not None:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise InvalidInput(N_("There is no customer {id}."), field="customer_id", id=str(customer_id))
        company = await session.get(Company, customer.company_id) if customer.company_id else None
        values = templates.customer_values(customer, company.name if company else None)
        seed = str(customer.id)
    return {language: templates.render(text, values, seed=seed) for language, text in template.items()}


async def list_pacing(session: HubAsyncSession) -> list[PacingOut]:
    time_zone = await _time_zone(session)
    rows = {row.channel_id: row for row in await session.scalars(select(ChannelPacing))}
    channels = await session.scalars(select(Channel).order_by(Channel.name))
    return [pacing_out(channel, rows.get(channel.id), time_zone) for channel in channels]


async def update_pacing(session: HubAsyncSession, channel_id: uuid.UUID, data: PacingIn) -> PacingOut:
    channel = await session.get(Channel, channel_id)
    if channel is None:
        raise NotFound()
    await ensure_pacing(session, [channel_id])
    row = await session.scalar(
        select(ChannelPacing).where(ChannelPacing.channel_id == channel_id).with_for_update()
    )
    assert row is not None
    stored = dict(row.rules or {})
    for name, value in msgspec.structs.asdict(data).items():
        if value is not UNSET:
            stored[name] = value
    rules = rules_of(channel.kind, stored)
    if rules.pause_every is not None and rules.pause_seconds < rules.min_gap_seconds:
        raise InvalidInput(
            N_("The long pause must be at least the gap between two messages."), field="pause_seconds"
        )
    if rules.hourly_cap is not None and rules.daily_cap is not None and rules.hourly_cap > rules.daily_cap:
        raise InvalidInput(N_("The hourly cap cannot be above the daily cap."), field="hourly_cap")
    row.rules = stored
    await session.commit()
    return pacing_out(channel, row, await _time_zone(session))


def window_times(campaign: Any) -> tuple[time | None, time | None]:
    """The sending window of a campaign (or of a row of its columns), as times of day."""
    if campaign.window_start is None or campaign.window_end is None:
        return None, None
    return time.fromisoformat(campaign.window_start), time.fromisoformat(campaign.window_end)
