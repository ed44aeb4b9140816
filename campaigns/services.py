"""Campaigns: creating and changing them, building their recipients, starting, pausing, resuming
and cancelling, results and exports. The sending itself is in `sending.py`."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from msgspec import UNSET
from sqlalchemy import Select, delete, func, literal_column, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import IntegrityError

from campaigns import templates
from campaigns.models import Campaign, CampaignChannel, CampaignRecipient, ChannelPacing
from campaigns.pacing import API_RULES, PacingRules, PacingState, next_slot
from campaigns.schemas import (
    AudienceIn,
    CampaignIn,
    CampaignOut,
    CampaignUpdate,
    ChannelResult,
    Counts,
    FailureResult,
    MinuteResult,
    PacingIn,
    PacingOut,
    PacingRulesOut,
    Rates,
    RecipientOut,
    ResultsOut,
)
from channels.adapters import STATE_NAMES
from channels.models import Channel
from channels.phones import read_phone
from crm.models import AttributeDefinition, Company, Customer, CustomerPhone
from crm.services import get_segment, segment_conditions, segment_filters
from hub import storage
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, insert_for, new_id, on_postgres, utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_, Term, translate
from hub.models import Media, Organization
from hub.pagination import paginate
from hub.permissions import roles_with
from hub.realtime import push_after_commit
from hub.runtime import Runtime
from hub.spreadsheets import safe_cell
from hub.tasks import kick, schedule

# Who follows campaigns live: those who may read them (admins and managers).
AUDIENCE_ROLES = roles_with("campaigns", "read")
AUDIENCE_BATCH = 1000
MAX_CSV_ERRORS = 100
EXPORT_BATCH = 1000

STATUS_NAMES = {
    "draft": Term(N_("draft")),
    "scheduled": Term(N_("scheduled")),
    "running": Term(N_("running")),
    "paused": Term(N_("paused")),
    "completed": Term(N_("completed")),
    "cancelled": Term(N_("cancelled")),
}
PAUSE_MESSAGES = {
    "manual": N_("Paused by {user}."),
    "channel_disconnected": N_("Paused: the sending profile {channel} is {state}."),
    "channel_logged_out": N_("Paused: the sending profile {channel} logged out; connect it again to resume."),
    "failures": N_("Paused: {failed} of the last {window} messages failed."),
    "channel_unreachable": N_("Paused: the channel {channel} could not be reached ({reason})."),
}


# Reading


def pause_message(campaign: Campaign, language: str) -> str | None:
    if campaign.status != "paused" or campaign.pause_reason is None:
        return None
    details = dict(campaign.pause_details or {})
    if "state" in details:
        details["state"] = STATE_NAMES.get(details["state"], details["state"])
    message = PAUSE_MESSAGES.get(campaign.pause_reason)
    if message is None:
        return campaign.pause_reason
    try:
        return translate(language, message, **details)
    except (KeyError, IndexError):
        return translate(language, message.split(":")[0])


def campaign_out(campaign: Campaign, channel_ids: list[uuid.UUID], language: str) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,  # type: ignore[arg-type]
        channel_ids=channel_ids,
        template=dict(campaign.template),
        media_id=campaign.media_id,
        audience=dict(campaign.audience),
        audience_status=campaign.audience_status,
        audience_report=dict(campaign.audience_report or {}),
        total=campaign.total,
        starts_at=campaign.starts_at,
        window_start=campaign.window_start,
        window_end=campaign.window_end,
        avoid_repeats=campaign.avoid_repeats,
        failure_window=campaign.failure_window,
        failure_threshold=campaign.failure_threshold,
        pause_reason=campaign.pause_reason if campaign.status == "paused" else None,
        pause_message=pause_message(campaign, language),
        sent=campaign.sent,
        failed=campaign.failed,
        skipped=campaign.skipped,
        unknown=campaign.unknown,
        created_by=campaign.created_by,
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        paused_at=campaign.paused_at,
        finished_at=campaign.finished_at,
    )


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


def push_campaign(session: HubAsyncSession, event: str, data: dict[str, Any]) -> None:
    push_after_commit(session, event, data, roles=AUDIENCE_ROLES)


# Creating and changing


async def _check_channels(session: HubAsyncSession, channel_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(channel_ids))
    found = set(await session.scalars(select(Channel.id).where(Channel.id.in_(wanted))))
    for channel_id in wanted:
        if channel_id not in found:
            raise InvalidInput(N_("There is no channel {id}."), field="channel_ids", id=str(channel_id))
    return wanted


async def _check_template(session: HubAsyncSession, template: dict[str, str]) -> None:
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


async def _check_start(session: HubAsyncSession, starts_at: datetime | None, field: str) -> datetime | None:
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
    starts_at = await _check_start(session, data.starts_at, "starts_at")
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
        campaign.audience = await _check_audience(session, data.audience)  # type: ignore[arg-type]
        campaign.audience_status, campaign.audience_report, campaign.total = "building", {}, 0
        _build_after_commit(session, campaign)
    if "starts_at" in changes:
        campaign.starts_at = await _check_start(session, changes["starts_at"], "starts_at")
    for name in ("window_start", "window_end", "avoid_repeats", "failure_window", "failure_threshold"):
        if name in changes:
            setattr(campaign, name, changes[name])
    _check_window(campaign.window_start, campaign.window_end)
    if campaign.status == "scheduled" and "starts_at" in changes:
        await _schedule_start(session, campaign)
    push_campaign(session, "campaignUpdated", {"campaignId": str(campaign.id), "status": campaign.status})
    await session.commit()
    return campaign


async def delete_campaign(session: HubAsyncSession, campaign_id: uuid.UUID) -> None:
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status == "running":
        raise Conflict(N_("Pause or cancel the campaign before deleting it."), field="status")
    await session.delete(campaign)
    await session.commit()


# Recipients


async def _add_recipients(
    session: HubAsyncSession,
    campaign_id: uuid.UUID,
    people: list[tuple[uuid.UUID, str]],
    report: dict[str, Any],
) -> None:
    """Insert (customer, phone) pairs; a number already in the campaign is counted as a duplicate."""
    if not people:
        return
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "organization_id": session.organization_id,
            "campaign_id": campaign_id,
            "customer_id": customer_id,
            "phone": phone,
            "status": "pending",
            "created_at": now,
            "updated_at": now,
        }
        for customer_id, phone in people
    ]
    statement = (
        insert_for(session, CampaignRecipient.__table__)
        .on_conflict_do_nothing(index_elements=["campaign_id", "phone"])
        .returning(CampaignRecipient.__table__.c.id)
    )
    # Many rows to one compiled statement, sent in batches: compiling a thousand-row VALUES
    # anew for every batch would cost more than inserting it.
    inserted = len((await session.execute(statement, rows)).all())
    report["will_send"] += inserted
    report["duplicates"] += len(rows) - inserted


def _count_customer(
    report: dict[str, Any], customer_id: uuid.UUID, phone: str | None, opted_out: bool
) -> tuple[uuid.UUID, str] | None:
    report["matched"] += 1
    if opted_out:
        report["opted_out"] += 1
        return None
    if not phone:
        report["no_phone"] += 1
        return None
    return customer_id, phone


def _empty_report() -> dict[str, Any]:
    return {
        "matched": 0,
        "will_send": 0,
        "opted_out": 0,
        "no_phone": 0,
        "invalid": 0,
        "duplicates": 0,
        "not_found": 0,
        "created": 0,
        "errors": [],
    }


async def build_audience(runtime: Runtime, organization_id: uuid.UUID, campaign_id: uuid.UUID) -> None:
    """Turn the campaign's audience into recipient rows, a batch per transaction so memory stays
    flat, counting who is left out and why."""
    async with runtime.db.session(organization_id) as session:
        campaign = await session.get(Campaign, campaign_id)
        if campaign is None or campaign.audience_status != "building":
            return
        audience = dict(campaign.audience)
        await session.execute(
            delete(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign_id)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    report = _empty_report()
    status = "ready"
    try:
        if "segment_id" in audience:
            await _audience_from_segment(
                runtime, organization_id, campaign_id, uuid.UUID(audience["segment_id"]), report
            )
        elif "customer_ids" in audience:
            ids = [uuid.UUID(i) for i in audience["customer_ids"]]
            await _audience_from_ids(runtime, organization_id, campaign_id, ids, report)
        else:
            await _audience_from_file(runtime, organization_id, campaign_id, audience, report)
    except InvalidInput as error:
        status = "failed"
        params = {name: str(value) for name, value in error.params.items()}
        report["errors"].insert(
            0, {"row": None, "field": error.field, "reason": error.message, "params": params}
        )
    async with runtime.db.session(organization_id) as session:
        campaign = await session.get(Campaign, campaign_id)
        if campaign is None:
            return
        campaign.audience_status, campaign.audience_report = status, report
        campaign.total = int(
            await session.scalar(
                select(func.count())
                .select_from(CampaignRecipient)
                .where(CampaignRecipient.campaign_id == campaign_id)
            )
            or 0
        )
        push_campaign(
            session,
            "campaignUpdated",
            {
                "campaignId": str(campaign_id),
                "status": campaign.status,
                "total": campaign.total,
                "audience": report,
            },
        )
        await session.commit()


async def _audience_from_segment(
    runtime: Runtime,
    organization_id: uuid.UUID,
    campaign_id: uuid.UUID,
    segment_id: uuid.UUID,
    report: dict[str, Any],
) -> None:
    after: uuid.UUID | None = None
    while True:
        async with runtime.db.session(organization_id) as session:
            try:
                filters = segment_filters(await get_segment(session, segment_id))
            except NotFound:
                raise InvalidInput(
                    N_("There is no segment {id}."), field="audience.segment_id", id=str(segment_id)
                ) from None
            statement = (
                select(Customer.id, Customer.phone, Customer.opted_out)
                .where(*await segment_conditions(session, filters))
                .order_by(Customer.id)
                .limit(AUDIENCE_BATCH)
            )
            if after is not None:
                statement = statement.where(Customer.id > after)
            rows = (await session.execute(statement)).all()
            if not rows:
                return
            people = [p for row in rows if (p := _count_customer(report, row.id, row.phone, row.opted_out))]
            await _add_recipients(session, campaign_id, people, report)
            await session.commit()
            after = rows[-1].id


async def _audience_from_ids(
    runtime: Runtime,
    organization_id: uuid.UUID,
    campaign_id: uuid.UUID,
    ids: list[uuid.UUID],
    report: dict[str, Any],
) -> None:
    for start in range(0, len(ids), AUDIENCE_BATCH):
        chunk = ids[start : start + AUDIENCE_BATCH]
        async with runtime.db.session(organization_id) as session:
            rows = (
                await session.execute(
                    select(Customer.id, Customer.phone, Customer.opted_out).where(Customer.id.in_(chunk))
                )
            ).all()
            report["not_found"] += len(chunk) - len(rows)
            people = [p for row in rows if (p := _count_customer(report, row.id, row.phone, row.opted_out))]
            await _add_recipients(session, campaign_id, people, report)
            await session.commit()


async def _audience_from_file(
    runtime: Runtime,
    organization_id: uuid.UUID,
    campaign_id: uuid.UUID,
    audience: dict[str, Any],
    report: dict[str, Any],
) -> None:
    """A CSV of phone numbers (and names): new numbers become customers; bad rows are reported."""
    async with runtime.db.session(organization_id) as session:
        media = await session.get(Media, uuid.UUID(audience["media_id"]))
        if media is None:
            raise InvalidInput(
                N_("There is no file {id}."), field="audience.media_id", id=audience["media_id"]
            )
        region = await session.scalar(select(Organization.default_region))
        key = media.key
    phone_column, name_column = audience["phone_column"], audience.get("name_column")
    with storage.media_store(runtime.settings).open(key) as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline=""))
        if phone_column not in (reader.fieldnames or []):
            raise InvalidInput(
                N_("The file has no column {column}."), field="audience.phone_column", column=phone_column
            )
        batch: dict[str, str] = {}
        for line, row in enumerate(reader, start=2):
            raw_phone = (row.get(phone_column) or "").strip()
            phone = read_phone(raw_phone, region) if raw_phone else None
            if phone is None:
                report["invalid"] += 1
                if len(report["errors"]) < MAX_CSV_ERRORS:
                    report["errors"].append(
                        {
                            "row": line,
                            "field": phone_column,
                            "reason": N_("This is not a valid phone number."),
                            "params": {},
                        }
                    )
                continue
            if phone in batch:
                report["duplicates"] += 1
                continue
            batch[phone] = ((row.get(name_column) or "").strip() if name_column else "")[:200]
            if len(batch) == AUDIENCE_BATCH:
                await _file_batch(runtime, organization_id, campaign_id, batch, report)
                batch = {}
        if batch:
            await _file_batch(runtime, organization_id, campaign_id, batch, report)


async def _file_batch(
    runtime: Runtime,
    organization_id: uuid.UUID,
    campaign_id: uuid.UUID,
    names: dict[str, str],
    report: dict[str, Any],
) -> None:
    for attempt in range(2):
        async with runtime.db.session(organization_id) as session:
            phones = list(names)
            known: dict[str, tuple[uuid.UUID, bool]] = {
                row.phone: (row.id, row.opted_out)
                for row in await session.execute(
                    select(Customer.phone, Customer.id, Customer.opted_out).where(Customer.phone.in_(phones))
                )
            }
            for row in await session.execute(
                select(CustomerPhone.phone, Customer.id, Customer.opted_out)
                .join(Customer, Customer.id == CustomerPhone.customer_id)
                .where(CustomerPhone.phone.in_(phones))
            ):
                known.setdefault(row.phone, (row.id, row.opted_out))
            created = 0
            for phone in phones:
                if phone not in known:
                    customer = Customer(id=new_id(), name=names[phone] or phone, phone=phone, other_phones=[])
                    session.add(customer)
                    known[phone] = (customer.id, False)
                    created += 1
            try:
                await session.flush()
            except IntegrityError:
                if attempt:
                    raise
                continue  # someone wrote in from one of these numbers meanwhile: read them again
            people = []
            for phone in phones:
                customer_id, opted_out = known[phone]
                if found := _count_customer(report, customer_id, phone, opted_out):
                    people.append(found)
            report["created"] += created
            await _add_recipients(session, campaign_id, people, report)
            await session.commit()
            return


async def list_recipients(
    session: HubAsyncSession, campaign_id: uuid.UUID, *, status: list[str], cursor: str | None, limit: int
) -> tuple[list[CampaignRecipient], str | None]:
    await get_campaign(session, campaign_id)
    statement: Select[Any] = select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
    if status:
        statement = statement.where(CampaignRecipient.status.in_(status))
    rows, next_cursor = await paginate(
        session, statement, CampaignRecipient.id, cursor=cursor, limit=limit, newest_first=False
    )
    return [row[0] for row in rows], next_cursor


def recipient_out(recipient: CampaignRecipient) -> RecipientOut:
    return RecipientOut(
        id=recipient.id,
        customer_id=recipient.customer_id,
        phone=recipient.phone,
        status=recipient.status,  # type: ignore[arg-type]
        channel_id=recipient.channel_id,
        text=recipient.text,
        error=recipient.error,
        sent_at=recipient.sent_at,
        delivered_at=recipient.delivered_at,
        read_at=recipient.read_at,
        replied_at=recipient.replied_at,
    )


def furthest_state(recipient: Any) -> str:
    """sent, then delivered, read, replied as they happen; otherwise the status itself."""
    for name in ("replied", "read", "delivered"):
        if getattr(recipient, f"{name}_at") is not None:
            return name
    return str(recipient.status)


async def export_recipients(
    runtime: Runtime, organization_id: uuid.UUID, campaign_id: uuid.UUID
) -> AsyncIterator[str]:
    """Every recipient with their state, as CSV, a batch at a time (flat memory, short reads)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "id",
            "phone",
            "customer_id",
            "status",
            "state",
            "channel_id",
            "error",
            "sent_at",
            "delivered_at",
            "read_at",
            "replied_at",
        ]
    )
    after: uuid.UUID | None = None
    while True:
        async with runtime.db.session(organization_id) as session:
            statement = (
                select(CampaignRecipient)
                .where(CampaignRecipient.campaign_id == campaign_id)
                .order_by(CampaignRecipient.id)
                .limit(EXPORT_BATCH)
            )
            if after is not None:
                statement = statement.where(CampaignRecipient.id > after)
            batch = list(await session.scalars(statement))
        for r in batch:
            writer.writerow(
                [
                    r.id,
                    r.phone,
                    r.customer_id or "",
                    r.status,
                    furthest_state(r),
                    r.channel_id or "",
                    safe_cell(r.error),
                    *(
                        moment.isoformat() if moment else ""
                        for moment in (r.sent_at, r.delivered_at, r.read_at, r.replied_at)
                    ),
                ]
            )
        if out.tell():
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id


# Starting, pausing, resuming, cancelling


async def _schedule_start(session: HubAsyncSession, campaign: Campaign) -> None:
    assert campaign.starts_at is not None
    await schedule(
        session,
        "campaigns.begin",
        campaign.starts_at,
        key=f"campaigns.begin:{campaign.id}",
        organization_id=str(campaign.organization_id),
        campaign_id=str(campaign.id),
    )


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


async def _ready_channels(session: HubAsyncSession, campaign: Campaign) -> list[uuid.UUID]:
    channel_ids = await channel_ids_of(session, campaign.id)
    if not channel_ids:
        raise InvalidInput(N_("The campaign has no sending channel left."), field="channel_ids")
    for channel in await session.scalars(select(Channel).where(Channel.id.in_(channel_ids))):
        if channel.state != "ready":
            raise Conflict(
                N_("The sending profile {channel} is {state}."),
                field="channel_ids",
                channel=channel.name,
                state=STATE_NAMES.get(channel.state, Term(channel.state)),
            )
    return channel_ids


async def start_campaign(
    session: HubAsyncSession, campaign_id: uuid.UUID, starts_at: datetime | None
) -> Campaign:
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status not in ("draft", "scheduled"):
        message = {
            "running": N_("The campaign is already running."),
            "paused": N_("The campaign is paused; resume it instead."),
        }.get(campaign.status, N_("A campaign that is {status} cannot be started."))
        raise Conflict(message, field="status", status=STATUS_NAMES[campaign.status])
    if campaign.audience_status == "building":
        raise Conflict(N_("The recipients are still being counted; try again in a moment."), field="audience")
    if campaign.audience_status == "failed" or campaign.total == 0:
        raise InvalidInput(N_("No one would receive this campaign."), field="audience")
    given = await _check_start(session, starts_at, "starts_at")
    begin_at = given or campaign.starts_at
    channel_ids = await _ready_channels(session, campaign)
    if begin_at is not None and begin_at > utcnow():
        campaign.status, campaign.starts_at = "scheduled", begin_at
        await _schedule_start(session, campaign)
    else:
        await _run(session, campaign, channel_ids)
    push_campaign(session, "campaignUpdated", {"campaignId": str(campaign.id), "status": campaign.status})
    await session.commit()
    return campaign


async def _run(session: HubAsyncSession, campaign: Campaign, channel_ids: list[uuid.UUID]) -> None:
    campaign.status, campaign.pause_reason, campaign.pause_details = "running", None, {}
    campaign.started_at = campaign.started_at or utcnow()
    await ensure_pacing(session, channel_ids)
    wake_channels(session, channel_ids)


async def begin_scheduled(runtime: Runtime, organization_id: uuid.UUID, campaign_id: uuid.UUID) -> None:
    """A scheduled campaign's start time came (the timed job, or the sweep as its backstop)."""
    async with runtime.db.session(organization_id) as session:
        campaign = await session.scalar(select(Campaign).where(Campaign.id == campaign_id).with_for_update())
        if campaign is None or campaign.status != "scheduled":
            return
        if campaign.starts_at is not None and campaign.starts_at > utcnow() + timedelta(seconds=1):
            return  # moved later meanwhile; its own job will come
        await _run(session, campaign, await channel_ids_of(session, campaign.id))
        push_campaign(session, "campaignUpdated", {"campaignId": str(campaign.id), "status": campaign.status})
        await session.commit()


async def pause_campaign(session: HubAsyncSession, actor: CurrentUser, campaign_id: uuid.UUID) -> Campaign:
    """Once this returns no new send begins: senders claim a recipient only while holding the
    campaign's gate shared, and this holds it alone (`hold_sends`)."""
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status not in ("running", "scheduled"):
        raise Conflict(
            N_("A campaign that is {status} cannot be paused."),
            field="status",
            status=STATUS_NAMES[campaign.status],
        )
    campaign.status, campaign.paused_at = "paused", utcnow()
    campaign.pause_reason, campaign.pause_details = "manual", {"user": actor.full_name}
    push_campaign(
        session,
        "campaignUpdated",
        {"campaignId": str(campaign.id), "status": campaign.status, "reason": "manual"},
    )
    await session.commit()
    return campaign


async def resume_campaign(session: HubAsyncSession, campaign_id: uuid.UUID) -> Campaign:
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status != "paused":
        message = {
            "cancelled": N_("A cancelled campaign cannot be resumed."),
            "running": N_("The campaign is already running."),
        }.get(campaign.status, N_("A campaign that is {status} cannot be resumed."))
        raise Conflict(message, field="status", status=STATUS_NAMES[campaign.status])
    channel_ids = await _ready_channels(session, campaign)
    if campaign.started_at is None and campaign.starts_at is not None and campaign.starts_at > utcnow():
        campaign.status = "scheduled"
        await _schedule_start(session, campaign)
    else:
        await _run(session, campaign, channel_ids)
    campaign.pause_reason, campaign.pause_details = None, {}
    push_campaign(session, "campaignUpdated", {"campaignId": str(campaign.id), "status": campaign.status})
    await session.commit()
    return campaign


async def cancel_campaign(session: HubAsyncSession, campaign_id: uuid.UUID) -> Campaign:
    """Nothing more is sent; recipients not reached stay pending, so the results show them."""
    campaign = await get_campaign(session, campaign_id, lock=True)
    if campaign.status in ("completed", "cancelled"):
        raise Conflict(
            N_("A campaign that is {status} cannot be cancelled."),
            field="status",
            status=STATUS_NAMES[campaign.status],
        )
    campaign.status, campaign.finished_at = "cancelled", utcnow()
    push_campaign(session, "campaignUpdated", {"campaignId": str(campaign.id), "status": campaign.status})
    await session.commit()
    return campaign


# Results


async def counts_of(session: HubAsyncSession, campaign_id: uuid.UUID) -> Counts:
    r = CampaignRecipient
    by_status = dict(
        (
            await session.execute(
                select(r.status, func.count()).where(r.campaign_id == campaign_id).group_by(r.status)
            )
        ).all()
    )
    later = (
        await session.execute(
            select(func.count(r.delivered_at), func.count(r.read_at), func.count(r.replied_at)).where(
                r.campaign_id == campaign_id
            )
        )
    ).one()
    return Counts(
        **{
            status: int(by_status.get(status, 0))
            for status in ("pending", "sending", "sent", "failed", "skipped", "unknown")
        },
        delivered=int(later[0]),
        read=int(later[1]),
        replied=int(later[2]),
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _minute(column: Any, postgres: bool) -> Any:
    if postgres:
        return func.date_trunc(literal_column("'minute'"), column)  # one expression in SELECT and GROUP BY
    return func.strftime(literal_column("'%Y-%m-%d %H:%M:00'"), column)


async def results(session: HubAsyncSession, campaign_id: uuid.UUID) -> ResultsOut:
    campaign = await get_campaign(session, campaign_id)
    r = CampaignRecipient
    counts = await counts_of(session, campaign_id)
    per_channel = (
        await session.execute(
            select(
                r.channel_id,
                func.count().filter(r.status == "sent"),
                func.count().filter(r.status == "failed"),
                func.count().filter(r.status == "unknown"),
                func.count(r.delivered_at),
                func.count(r.read_at),
                func.count(r.replied_at),
            )
            .where(r.campaign_id == campaign_id, r.channel_id.is_not(None))
            .group_by(r.channel_id)
        )
    ).all()
    names = dict(
        (
            await session.execute(
                select(Channel.id, Channel.name).where(Channel.id.in_([row[0] for row in per_channel]))
            )
        ).all()
    )
    minute = _minute(r.finished_at, on_postgres(session)).label("minute")
    minutes = (
        await session.execute(
            select(minute, func.count().filter(r.status == "sent"), func.count().filter(r.status == "failed"))
            .where(r.campaign_id == campaign_id, r.status.in_(("sent", "failed")), r.finished_at.is_not(None))
            .group_by(minute)
            .order_by(minute)
        )
    ).all()
    failures = (
        await session.execute(
            select(r.error, func.count())
            .where(r.campaign_id == campaign_id, r.status.in_(("failed", "unknown", "skipped")))
            .group_by(r.error)
            .order_by(func.count().desc())
            .limit(50)
        )
    ).all()
    return ResultsOut(
        campaign_id=campaign.id,
        status=campaign.status,  # type: ignore[arg-type]
        total=campaign.total,
        counts=counts,
        rates=Rates(
            delivery=_share(counts.delivered, counts.sent),
            read=_share(counts.read, counts.sent),
            reply=_share(counts.replied, counts.sent),
        ),
        channels=[
            ChannelResult(
                channel_id=row[0],
                name=names.get(row[0]),
                sent=row[1],
                failed=row[2],
                unknown=row[3],
                delivered=row[4],
                read=row[5],
                replied=row[6],
            )
            for row in per_channel
        ],
        per_minute=[MinuteResult(minute=_as_minute(row[0]), sent=row[1], failed=row[2]) for row in minutes],
        failures=[FailureResult(reason=row[0] or "", count=row[1]) for row in failures],
        audience_report=dict(campaign.audience_report or {}),
    )


def _as_minute(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


# Previews


SAMPLE = {"name": "Sara Ahmed", "first_name": "Sara", "last_name": "Ahmed", "phone": "+966500000000"}


async def preview(
    session: HubAsyncSession, template: dict[str, str], customer_id: uuid.UUID | None
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


# Pacing


PACING_FIELDS = (
    "min_gap_seconds",
    "jitter_seconds",
    "hourly_cap",
    "daily_cap",
    "pause_every",
    "pause_seconds",
    "warmup_daily_caps",
)


def rules_of(kind: str, stored: dict[str, Any]) -> PacingRules:
    """The defaults of the channel's kind, with the organization's changes."""
    base = API_RULES if kind == "api" else PacingRules()
    changes = {name: stored[name] for name in PACING_FIELDS if name in stored}
    if "warmup_daily_caps" in changes:
        changes["warmup_daily_caps"] = tuple(changes["warmup_daily_caps"])
    return replace(base, **changes)


def state_of(row: ChannelPacing) -> PacingState:
    return PacingState(
        not_before=row.not_before,
        hour_started_at=row.hour_started_at,
        sent_this_hour=row.sent_this_hour,
        day=row.day,
        sent_today=row.sent_today,
        sent_in_a_row=row.sent_in_a_row,
        first_day=row.first_day,
    )


def pacing_out(channel: Channel, row: ChannelPacing | None, time_zone: str) -> PacingOut:
    rules = rules_of(channel.kind, row.rules if row else {})
    state = state_of(row) if row else PacingState()
    zone_rules = replace(rules, window_start=None, window_end=None, time_zone=time_zone)
    return PacingOut(
        channel_id=channel.id,
        name=channel.name,
        kind=channel.kind,
        rules=PacingRulesOut(
            min_gap_seconds=rules.min_gap_seconds,
            jitter_seconds=rules.jitter_seconds,
            hourly_cap=rules.hourly_cap,
            daily_cap=rules.daily_cap,
            pause_every=rules.pause_every,
            pause_seconds=rules.pause_seconds,
            warmup_daily_caps=list(rules.warmup_daily_caps),
        ),
        next_send_at=next_slot(state, zone_rules, utcnow()) if row else None,
        sent_this_hour=state.sent_this_hour,
        sent_today=state.sent_today,
        first_day=state.first_day,
    )


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


def window_times(campaign: Campaign) -> tuple[time | None, time | None]:
    if campaign.window_start is None or campaign.window_end is None:
        return None, None
    return time.fromisoformat(campaign.window_start), time.fromisoformat(campaign.window_end)
