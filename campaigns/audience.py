"""Building a campaign's recipients from a segment, a list of customers or a CSV file, a
thousand a transaction, deduplicated by number, with a report of what was left out and why."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from campaigns.events import CampaignUpdated
from campaigns.models import Campaign, CampaignRecipient
from campaigns.views import push_campaign
from channels.phones import read_phone
from crm.models import Customer, CustomerPhone
from crm.services import get_segment, segment_conditions, segment_filters
from hub import storage
from hub.db import HubAsyncSession, insert_for, new_id, table_of, utcnow
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.models import Media, Organization
from hub.runtime import Runtime

log = structlog.get_logger(__name__)

AUDIENCE_BATCH = 1000
MAX_CSV_ERRORS = 100


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
        insert_for(session, table_of(CampaignRecipient))
        .on_conflict_do_nothing(index_elements=["campaign_id", "phone"])
        .returning(table_of(CampaignRecipient).c.id)
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
            CampaignUpdated(
                campaign_id=campaign_id,
                status=campaign.status,
                audience_status=status,
                total=campaign.total,
                audience=report,
            ),
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
