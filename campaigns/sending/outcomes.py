"""What became of each send, written in batches: one transaction per organization about once a
second, each outcome only over the claim it came from, with the counters, the inbox's copy, the
timelines and usage; a send whose fate is unknown is resolved from the channel's own record."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, or_, select, update

from campaigns.events import CampaignMessagesSent, SentMessage
from campaigns.lifecycle import finish_if_done, pause_on_failures
from campaigns.models import Campaign, CampaignRecipient, EarlyReceipt
from campaigns.sending.receipts import apply_receipt
from campaigns.views import progress_of, push_campaign
from channels.adapters import SentRecord, adapter_for
from channels.models import Channel
from crm.services import record_activities
from hub import events
from hub.db import HubAsyncSession, one_of, table_of, utcnow
from hub.runtime import Runtime
from hub.services import count_usage

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 1.0
FLUSH_SIZE = 100
PROGRESS_EVERY = timedelta(milliseconds=400)

_RECIPIENT = table_of(CampaignRecipient)


@dataclass
class Claim:
    recipient_id: uuid.UUID
    campaign_id: uuid.UUID
    customer_id: uuid.UUID | None
    phone: str
    text: str
    media_id: uuid.UUID | None
    begin_at: datetime | None = None  # its slot: the send goes out then, not before
    claimed_by: str | None = None  # the sender's mark: its outcome counts only over this claim


@dataclass
class Outcome:
    """What became of one claimed recipient: sent, failed, unknown, or pending again (not sent)."""

    recipient_id: uuid.UUID
    campaign_id: uuid.UUID
    customer_id: uuid.UUID | None
    channel_id: uuid.UUID
    status: str
    at: datetime
    text: str | None = None
    media_id: uuid.UUID | None = None
    external_id: str | None = None
    error: str | None = None
    claimed_by: str | None = None  # the claim it settles; none for a skip (written when claimed)


class OutcomeWriter:
    """What the senders of this process learnt, written together: one transaction per
    organization about once a second however many channels send, beside the pacing loops so
    writing never delays a slot; at once when something failed, so the failure window is judged
    without delay."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.waiting: dict[uuid.UUID, list[Outcome]] = defaultdict(list)
        self.soon = asyncio.Event()
        self.lock = asyncio.Lock()
        self.task: asyncio.Task[None] | None = None

    def add(self, organization_id: uuid.UUID, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        self.waiting[organization_id].extend(outcomes)
        if any(o.status == "failed" for o in outcomes) or len(self.waiting[organization_id]) >= FLUSH_SIZE:
            self.soon.set()
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self.waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.soon.wait(), FLUSH_SECONDS)
            self.soon.clear()
            await self.write()

    async def write(self) -> None:
        async with self.lock:
            batches, self.waiting = self.waiting, defaultdict(list)
            for organization_id, outcomes in batches.items():
                try:
                    async with self.runtime.db.session(organization_id) as session:
                        await record_outcomes(session, outcomes)
                except Exception as error:
                    # The recipients stay `sending`; the sweep settles them from the channel's record.
                    log.error("campaign outcomes not written", count=len(outcomes), error=repr(error)[:300])


def writer_of(runtime: Runtime) -> OutcomeWriter:
    found = runtime.extras.get("campaign_outcomes")
    if found is None:
        found = runtime.extras["campaign_outcomes"] = OutcomeWriter(runtime)
    return found


def outcome_of(claim: Claim, channel_id: uuid.UUID, status: str, **values: Any) -> Outcome:
    return Outcome(
        claim.recipient_id,
        claim.campaign_id,
        claim.customer_id,
        channel_id,
        status,
        utcnow(),
        text=claim.text,
        media_id=claim.media_id,
        claimed_by=claim.claimed_by,
        **values,
    )


async def resolve(channel: Channel, claim: Claim, *, reason: str) -> Outcome:
    """A send whose fate is unknown: ask the channel's record; if it cannot tell, `unknown`."""
    try:
        record: SentRecord | None = await adapter_for(channel.kind).find_sent(channel, claim.recipient_id)
    except Exception as error:  # asking is best effort
        log.warning("channel record unavailable", channel=str(channel.id), error=repr(error)[:200])
        record = None
    if record is None:
        return outcome_of(claim, channel.id, "unknown", error=f"in doubt: {reason}"[:500])
    if record.found:
        return outcome_of(
            claim, channel.id, "sent", external_id=record.external_id or str(claim.recipient_id)
        )
    return outcome_of(claim, channel.id, "pending", error=reason)


_SETTLE = (
    update(_RECIPIENT)
    .where(
        _RECIPIENT.c.organization_id == bindparam("org"),
        _RECIPIENT.c.id == bindparam("rid"),
        _RECIPIENT.c.status == "sending",
        _RECIPIENT.c.claimed_by == bindparam("holder"),
    )
    .values(
        status=bindparam("new_status"),
        external_id=bindparam("new_external_id"),
        error=bindparam("new_error"),
        sent_at=bindparam("new_sent_at"),
        finished_at=bindparam("new_finished_at"),
        claimed_by=bindparam("new_claimed_by"),
        updated_at=bindparam("new_updated_at"),
    )
)


async def record_outcomes(session: HubAsyncSession, outcomes: list[Outcome]) -> None:
    """One transaction for a batch: the recipients, the campaigns' counts, usage, the inbox's copy
    of each message, the customers' timelines, then auto-pause, completion and progress.

    An outcome counts only if its recipient is still `sending` under the claim it came from (the
    rows are locked first): one settled already, by its sender or by the sweep, changes nothing
    and counts nothing, so what the counters add is what the rows changed."""
    now = utcnow()
    settle = await _still_claimed(session, [o for o in outcomes if o.status != "skipped"])
    # Skipped ones were written, once, in the transaction that claimed them.
    outcomes = [o for o in outcomes if o.status == "skipped"] + settle
    if settle:
        await session.execute(
            _SETTLE,
            [
                {
                    "org": session.organization_id,
                    "rid": o.recipient_id,
                    "holder": o.claimed_by,
                    "new_status": o.status,
                    "new_external_id": o.external_id,
                    "new_error": o.error,
                    "new_sent_at": o.at if o.status == "sent" else None,
                    "new_finished_at": o.at if o.status != "pending" else None,
                    "new_claimed_by": None,
                    "new_updated_at": now,
                }
                for o in settle
            ],
        )
    await _apply_early_receipts(session, [o for o in outcomes if o.status == "sent"])
    by_campaign: dict[uuid.UUID, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_campaign[outcome.campaign_id].append(outcome)
    sent_total = 0
    for campaign_id in sorted(by_campaign):  # in one order everywhere: no deadlock between senders
        batch = by_campaign[campaign_id]
        tally = Counter(o.status for o in batch)
        sent_total += tally["sent"]
        await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id)
            .values(
                sent=Campaign.sent + tally["sent"],
                failed=Campaign.failed + tally["failed"],
                skipped=Campaign.skipped + tally["skipped"],
                unknown=Campaign.unknown + tally["unknown"],
            )
            .execution_options(synchronize_session=False)
        )
        sent = [o for o in batch if o.status == "sent" and o.customer_id is not None]
        if sent:
            await events.publish(
                session,
                CampaignMessagesSent(
                    organization_id=session.organization_id,  # type: ignore[arg-type]  # outcomes are written in tenant sessions
                    campaign_id=campaign_id,
                    messages=[
                        SentMessage(
                            message_id=o.recipient_id,
                            customer_id=o.customer_id,  # type: ignore[arg-type]  # filtered to outcomes with a customer above
                            channel_id=o.channel_id,
                            external_id=o.external_id,
                            text=o.text,
                            media_id=o.media_id,
                            at=o.at,
                        )
                        for o in sent
                    ],
                ),
            )
            await record_activities(
                session,
                [
                    {
                        "customer_id": o.customer_id,
                        "kind": "campaign_message",
                        "details": {"campaign_id": str(campaign_id), "message_id": str(o.recipient_id)},
                        "key": f"campaign_message:{o.recipient_id}",
                        "at": o.at,
                    }
                    for o in sent
                ],
            )
        if tally["failed"]:
            await pause_on_failures(session, campaign_id)
        if not await finish_if_done(session, campaign_id):
            await push_progress(session, campaign_id)
    await count_usage(session, "messages_sent", sent_total)
    await session.commit()


async def _still_claimed(session: HubAsyncSession, outcomes: list[Outcome]) -> list[Outcome]:
    """The outcomes whose recipient is still `sending` under their claim, each once; the rows stay
    locked to the end of the transaction, so no other writer settles them meanwhile."""
    if not outcomes:
        return []
    rows = await session.execute(
        select(_RECIPIENT.c.id, _RECIPIENT.c.claimed_by)
        .where(
            _RECIPIENT.c.organization_id == session.organization_id,
            one_of(session, _RECIPIENT.c.id, {o.recipient_id for o in outcomes}),
            _RECIPIENT.c.status == "sending",
        )
        .order_by(_RECIPIENT.c.id)  # one locking order for every writer
        .with_for_update()
    )
    open_claims = {(row.id, row.claimed_by) for row in rows}
    fresh = []
    for outcome in outcomes:
        key = (outcome.recipient_id, outcome.claimed_by)
        if key in open_claims:
            open_claims.discard(key)
            fresh.append(outcome)
        else:
            log.info("campaign outcome already settled", recipient=str(outcome.recipient_id))
    return fresh


async def push_progress(session: HubAsyncSession, campaign_id: uuid.UUID) -> None:
    """campaignProgress at most every PROGRESS_EVERY per campaign, across every sender and process:
    the one whose update claims the moment pushes."""
    now = utcnow()
    claimed = await session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            or_(Campaign.progress_pushed_at.is_(None), Campaign.progress_pushed_at < now - PROGRESS_EVERY),
        )
        .values(progress_pushed_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]  # an UPDATE's result has rowcount; the stubs type it as Result
        return
    campaign = await session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is not None:
        push_campaign(session, progress_of(campaign))


async def _apply_early_receipts(session: HubAsyncSession, sent: list[Outcome]) -> None:
    """Receipts that came before these outcomes were written, applied now."""
    keyed = {(o.channel_id, o.external_id) for o in sent if o.external_id}
    if not keyed:
        return
    early = list(
        await session.scalars(
            select(EarlyReceipt)
            .where(
                one_of(session, EarlyReceipt.channel_id, {channel for channel, _ in keyed}),
                one_of(session, EarlyReceipt.external_id, {external for _, external in keyed}),
            )
            .order_by(EarlyReceipt.id)
        )
    )
    for receipt in early:
        if (receipt.channel_id, receipt.external_id) in keyed:
            await apply_receipt(
                session, receipt.channel_id, receipt.external_id, receipt.status, receipt.reason
            )
            await session.delete(receipt)
