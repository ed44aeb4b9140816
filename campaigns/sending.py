"""Sending campaigns: one sender per channel at a time, every send paced, every recipient once.

A sender holds its channel's lease (a row in `channel_pacing`, so it holds across processes and
restarts) for a turn of a few seconds. Each send first claims its recipient and the channel's next
pacing slot in one transaction: the recipient becomes `sending`, with the sender's mark, and the
pacing state moves on. Only then does the message go out, carrying the recipient's id as its
idempotency key, and it is over within `HUB_SEND_SECONDS` of its slot, answered or not. What
happened is written in batches, each outcome only over the claim it came from. A recipient left
`sending` once its send is surely over is in doubt: it is resolved from the channel's own record
when the channel keeps one, and otherwise marked `unknown`, never sent again blindly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import msgspec
import structlog
from sqlalchemy import and_, bindparam, delete, func, or_, select, update

from campaigns import templates
from campaigns.events import CampaignMessagesSent, SentMessage
from campaigns.models import Campaign, CampaignChannel, CampaignRecipient, ChannelPacing, EarlyReceipt
from campaigns.pacing import PacingState, next_slot, record_send
from campaigns.services import (
    counts_of,
    ensure_pacing,
    hold_sends,
    push_campaign,
    results,
    rules_of,
    state_of,
    window_times,
)
from channels.adapters import (
    SETTLE_MARGIN,
    ChannelError,
    OutboundAttachment,
    OutboundMessage,
    SentRecord,
    adapter_for,
    send_message,
)
from channels.models import Channel
from crm.models import Company, Customer
from crm.services import record_activities
from hub import events, storage
from hub.db import HubAsyncSession, one_of, utcnow
from hub.models import Media, Organization
from hub.runtime import Runtime
from hub.services import count_usage
from hub.tasks import kick, schedule

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=20)
TURN_SECONDS = 10.0  # a sender gives its channel back this often, so channels spread over workers
MAX_IN_FLIGHT = 16  # sends of one channel waiting for their answer at once
FLUSH_SECONDS = 1.0
FLUSH_SIZE = 100
PROGRESS_EVERY = timedelta(milliseconds=400)
REPEAT_WINDOW = timedelta(hours=24)
EARLY_RECEIPTS_KEPT = timedelta(minutes=10)
UNREACHABLE_IN_A_ROW = 3
LONGEST_NAP = 15.0  # seconds a sender waits for its next slot; longer, and a timed job wakes it
CATCH_UP = timedelta(seconds=1)
RENEW_AFTER = timedelta(seconds=5)  # a send renews the lease too; a sender that only waits, this often
STATE_CHECK = timedelta(seconds=1)  # how often the channel's connection state is read again
# A send is claimed this long before its slot and goes out at the slot, so the claim's own time
# never delays it; a pause that returns within this moment lets one already claimed go.
LOOKAHEAD = timedelta(milliseconds=50)
_chooser = random.SystemRandom()
_PACING, _CAMPAIGN, _LINK = ChannelPacing.__table__, Campaign.__table__, CampaignChannel.__table__
_RECIPIENT, _CHANNEL, _ORGANIZATION = CampaignRecipient.__table__, Channel.__table__, Organization.__table__
_CUSTOMER, _COMPANY = Customer.__table__, Company.__table__


@functools.cache
def _statements() -> dict[str, Any]:
    """The statements of every send, built once: building them costs more than running them."""
    org = bindparam("org", type_=_PACING.c.organization_id.type)
    channel = bindparam("channel", type_=_PACING.c.channel_id.type)
    campaign = bindparam("campaign", type_=_RECIPIENT.c.campaign_id.type)
    recipient = bindparam("recipient", type_=_RECIPIENT.c.id.type)
    now = bindparam("now", type_=_RECIPIENT.c.updated_at.type)
    pending = (
        select(_RECIPIENT.c.id)
        .where(
            _RECIPIENT.c.organization_id == org,
            _RECIPIENT.c.campaign_id == _CAMPAIGN.c.id,
            _RECIPIENT.c.status == "pending",
        )
        .exists()
    )
    person = _CUSTOMER
    this_recipient = and_(_RECIPIENT.c.organization_id == org, _RECIPIENT.c.id == recipient)
    return {
        "renew": update(_PACING)
        .where(
            _PACING.c.organization_id == org,
            _PACING.c.channel_id == channel,
            _PACING.c.lease_holder == bindparam("holder", type_=_PACING.c.lease_holder.type),
        )
        .values(lease_until=bindparam("until", type_=_PACING.c.lease_until.type))
        .returning(*_PACING.c),
        "channel_state": select(_CHANNEL.c.state).where(
            _CHANNEL.c.organization_id == org, _CHANNEL.c.id == channel
        ),
        "campaign": select(
            _CAMPAIGN.c.id,
            _CAMPAIGN.c.template,
            _CAMPAIGN.c.media_id,
            _CAMPAIGN.c.window_start,
            _CAMPAIGN.c.window_end,
            _CAMPAIGN.c.avoid_repeats,
        )
        .select_from(_CAMPAIGN.join(_LINK, _LINK.c.campaign_id == _CAMPAIGN.c.id))
        .where(
            _CAMPAIGN.c.organization_id == org,
            _LINK.c.organization_id == org,
            _LINK.c.channel_id == channel,
            _CAMPAIGN.c.status == "running",
            pending,
        )
        .order_by(_CAMPAIGN.c.started_at, _CAMPAIGN.c.id)
        .limit(1),
        "status": select(_CAMPAIGN.c.status).where(
            _CAMPAIGN.c.organization_id == org, _CAMPAIGN.c.id == campaign
        ),
        "claim": select(
            _RECIPIENT.c.id,
            _RECIPIENT.c.customer_id,
            _RECIPIENT.c.phone,
            person.c.id.label("person"),
            person.c.name,
            person.c.email,
            person.c.language,
            person.c.opted_out,
            person.c.attributes,
            person.c.company_id,
        )
        .select_from(
            _RECIPIENT.outerjoin(
                person, and_(person.c.id == _RECIPIENT.c.customer_id, person.c.organization_id == org)
            )
        )
        .where(
            _RECIPIENT.c.organization_id == org,
            _RECIPIENT.c.campaign_id == campaign,
            _RECIPIENT.c.status == "pending",
        )
        .order_by(_RECIPIENT.c.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=_RECIPIENT),
        "skip": update(_RECIPIENT)
        .where(this_recipient)
        .values(
            status="skipped",
            error=bindparam("reason", type_=_RECIPIENT.c.error.type),
            finished_at=now,
            updated_at=now,
        ),
        "mark_sending": update(_RECIPIENT)
        .where(this_recipient)
        .values(
            status="sending",
            channel_id=bindparam("channel", type_=_RECIPIENT.c.channel_id.type),
            claimed_by=bindparam("holder", type_=_RECIPIENT.c.claimed_by.type),
            claimed_at=bindparam("begin", type_=_RECIPIENT.c.claimed_at.type),
            text=bindparam("text", type_=_RECIPIENT.c.text.type),
            text_hash=bindparam("digest", type_=_RECIPIENT.c.text_hash.type),
            updated_at=now,
        ),
        "pace": update(_PACING)
        .where(
            _PACING.c.organization_id == org,
            _PACING.c.id == bindparam("row", type_=_PACING.c.id.type),
            _PACING.c.lease_holder == bindparam("holder", type_=_PACING.c.lease_holder.type),
        )
        .values(
            lease_until=bindparam("until", type_=_PACING.c.lease_until.type),
            not_before=bindparam("not_before", type_=_PACING.c.not_before.type),
            hour_started_at=bindparam("hour_started_at", type_=_PACING.c.hour_started_at.type),
            sent_this_hour=bindparam("sent_this_hour", type_=_PACING.c.sent_this_hour.type),
            day=bindparam("day", type_=_PACING.c.day.type),
            sent_today=bindparam("sent_today", type_=_PACING.c.sent_today.type),
            sent_in_a_row=bindparam("sent_in_a_row", type_=_PACING.c.sent_in_a_row.type),
            first_day=bindparam("first_day", type_=_PACING.c.first_day.type),
            last_send_at=bindparam("last_send_at", type_=_PACING.c.last_send_at.type),
            updated_at=now,
        ),
    }


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


@dataclass
class Step:
    kind: str  # send, wait, again, idle, stop
    claim: Claim | None = None
    until: datetime | None = None
    skipped: list[Outcome] = field(default_factory=list)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ChannelSender:
    def __init__(self, runtime: Runtime, organization_id: uuid.UUID, channel_id: uuid.UUID) -> None:
        self.runtime = runtime
        self.organization_id = organization_id
        self.channel_id = channel_id
        self.holder = uuid.uuid4().hex
        self.channel: Channel | None = None
        self.time_zone: str | None = None
        self.pacing: Any = None  # the pacing row as read when the lease was last renewed
        self.state: PacingState | None = None  # the state as this sender last wrote it
        self.last_send_at: datetime | None = None
        self.renewed_at = utcnow()
        self.state_name: str | None = None
        self.state_checked_at = utcnow()
        self.default_language: str | None = None
        self.writer = writer_of(runtime)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.attachments: dict[uuid.UUID, OutboundAttachment] = {}
        self.unreachable_in_a_row = 0
        self.last_error = ""

    async def run(self) -> None:
        """One turn on the channel; another turn is asked for while work remains."""
        if not await self._take_lease():
            return
        again = False
        try:
            again = await self._send_for_a_turn()
        finally:
            # The channel is handed on before the last answers are awaited, so the next turn keeps
            # the pace; what is still under way is written by this sender when it ends.
            await self._release()
            if again:
                await kick(
                    "campaigns.send_on_channel",
                    organization_id=str(self.organization_id),
                    channel_id=str(self.channel_id),
                )
            await self._drain()

    async def _take_lease(self) -> bool:
        async with self.runtime.db.session(self.organization_id) as session:
            now = utcnow()
            taken = await session.execute(
                update(ChannelPacing)
                .where(
                    ChannelPacing.channel_id == self.channel_id,
                    or_(ChannelPacing.lease_until.is_(None), ChannelPacing.lease_until < now),
                )
                .values(lease_holder=self.holder, lease_until=now + LEASE)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        return bool(taken.rowcount)  # type: ignore[attr-defined]

    async def _release(self) -> None:
        async with self.runtime.db.session(self.organization_id) as session:
            await session.execute(
                update(ChannelPacing)
                .where(ChannelPacing.channel_id == self.channel_id, ChannelPacing.lease_holder == self.holder)
                .values(lease_holder=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def _send_for_a_turn(self) -> bool:
        loop = asyncio.get_running_loop()
        turn_ends = loop.time() + TURN_SECONDS
        while True:
            if self.unreachable_in_a_row >= UNREACHABLE_IN_A_ROW:
                await self._pause_all(
                    "channel_unreachable",
                    {"channel": self.channel.name if self.channel else "", "reason": self.last_error[:200]},
                )
                return False
            await self.slots.acquire()
            try:
                step = await self._next_step()
            except BaseException:
                self.slots.release()
                raise
            self.writer.add(self.organization_id, step.skipped)
            if step.kind == "send":
                assert step.claim is not None
                task = asyncio.create_task(self._send(step.claim))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
            else:
                self.slots.release()
            if step.kind in ("idle", "stop"):
                return False
            if step.until is not None:
                delay = (step.until - utcnow()).total_seconds()
                if delay > LONGEST_NAP:
                    await self._wake_at(step.until)
                    return False
                if delay > 0:
                    await asyncio.sleep(delay)
            if loop.time() >= turn_ends:
                return True

    async def _wake_at(self, moment: datetime) -> None:
        """Come back at the next slot, durably: a window that opens tomorrow survives restarts."""
        async with self.runtime.db.session(self.organization_id) as session:
            await schedule(
                session,
                "campaigns.send_on_channel",
                moment,
                key=f"campaigns.send_on_channel:{self.channel_id}",
                organization_id=str(self.organization_id),
                channel_id=str(self.channel_id),
            )
            await session.commit()

    async def _next_step(self) -> Step:
        """In one transaction: renew the lease, find the campaign to serve, wait for the pacing
        slot, or claim a recipient together with the slot. Run for every send, so in plain
        statements built once, each naming the organization (row security applies too on
        PostgreSQL)."""
        org = self.organization_id
        statements = _statements()
        async with self.runtime.db.session(org) as session:
            connection = await session.connection()
            now = utcnow()
            ids = {"org": org, "channel": self.channel_id}
            # While this sender holds the lease it alone writes the pacing state, so it reads the
            # row once a turn; each send writes it back and renews the lease in one statement.
            if self.pacing is None or now - self.renewed_at > RENEW_AFTER:
                self.pacing = (
                    await connection.execute(
                        statements["renew"], {**ids, "holder": self.holder, "until": now + LEASE}
                    )
                ).first()
                if self.pacing is None:
                    return Step("stop")  # the lease lapsed and another sender took the channel
                self.renewed_at, self.state, self.last_send_at = now, None, None  # the row is the truth
            pacing = self.pacing
            if self.channel is None:
                self.channel = await session.get(Channel, self.channel_id)
                self.time_zone, self.default_language = (
                    await connection.execute(
                        select(_ORGANIZATION.c.time_zone, _ORGANIZATION.c.default_language).where(
                            _ORGANIZATION.c.id == org
                        )
                    )
                ).one()
                if self.channel is None:
                    return Step("stop")
                session.expunge(self.channel)
            if self.state_name is None or now - self.state_checked_at > STATE_CHECK:
                self.state_name = await connection.scalar(statements["channel_state"], ids)
                self.state_checked_at = now
            state_name = self.state_name
            campaign = (await connection.execute(statements["campaign"], ids)).first()
            if campaign is not None:
                # Under the campaign's gate a pause waits for this claim, and once the gate is
                # held the status is read again: a pause that came first is seen.
                await hold_sends(session, campaign.id, exclusive=False)
                status = await connection.scalar(statements["status"], {"org": org, "campaign": campaign.id})
                if status != "running":
                    await session.commit()
                    return Step("again")
            if campaign is None:
                await session.commit()
                await self._finish_campaigns()
                return Step("idle")
            if state_name != "ready":
                await session.commit()
                reason = "channel_logged_out" if state_name == "logged_out" else "channel_disconnected"
                await self._pause_all(reason, {"channel": self.channel.name, "state": state_name})
                return Step("stop")
            # The campaign's sending window, else the channel's own (09:00-21:00 for WhatsApp).
            rules = rules_of(self.channel.kind, pacing.rules or {})
            window_start, window_end = window_times(campaign)
            if window_start is not None:
                rules = replace(rules, window_start=window_start, window_end=window_end)
            rules = replace(rules, time_zone=self.time_zone or "UTC")
            state = self.state or state_of(pacing)
            last_send_at = self.last_send_at or pacing.last_send_at
            slot = next_slot(state, rules, now)
            if last_send_at is not None:  # never closer than the gap, however the count went
                slot = max(slot, last_send_at + timedelta(seconds=rules.min_gap_seconds))
            if slot > now + LOOKAHEAD:
                await session.commit()
                return Step("wait", until=slot - LOOKAHEAD)
            begin = max(slot, now)
            skipped: list[Outcome] = []
            while True:
                claim = await self._claim(connection, campaign, now, begin, skipped)
                if claim is None:
                    await session.commit()
                    return Step("again", skipped=skipped)
                if isinstance(claim, Claim):
                    break
            # Counted at its planned moment when only a little late, so waking late never slows the rate.
            on_time = state.not_before is not None and begin - state.not_before < CATCH_UP
            after = record_send(state, rules, state.not_before if on_time else begin, _chooser)  # type: ignore[arg-type]
            paced = await connection.execute(
                statements["pace"],
                {
                    "org": org,
                    "row": pacing.id,
                    "holder": self.holder,
                    "until": now + LEASE,
                    "not_before": after.not_before,
                    "hour_started_at": after.hour_started_at,
                    "sent_this_hour": after.sent_this_hour,
                    "day": after.day,
                    "sent_today": after.sent_today,
                    "sent_in_a_row": after.sent_in_a_row,
                    "first_day": after.first_day,
                    "last_send_at": begin,
                    "now": now,
                },
            )
            if not paced.rowcount:  # the lease went meanwhile: nothing of this claim stays
                await session.rollback()
                return Step("stop")
            await session.commit()
            self.state, self.last_send_at, self.renewed_at = after, begin, now
            upcoming = max(after.not_before or begin, begin + timedelta(seconds=rules.min_gap_seconds))
            return Step("send", claim=claim, until=upcoming - LOOKAHEAD, skipped=skipped)

    async def _claim(
        self, connection: Any, campaign: Any, now: datetime, begin: datetime, skipped: list[Outcome]
    ) -> Claim | bool | None:
        """The next pending recipient, marked sending; False when it had to be skipped."""
        org = self.organization_id
        statements = _statements()
        row = (await connection.execute(statements["claim"], {"org": org, "campaign": campaign.id})).first()
        if row is None:
            return None
        reason = None
        text = ""
        if row.person is None:
            reason = "customer_deleted"
        elif row.opted_out:
            reason = "opted_out"
        else:
            company = None
            if row.company_id is not None:
                company = await connection.scalar(
                    select(_COMPANY.c.name).where(
                        _COMPANY.c.organization_id == org, _COMPANY.c.id == row.company_id
                    )
                )
            variant = templates.choose_variant(campaign.template, row.language, self.default_language or "ar")
            values = templates.customer_values(
                SimpleNamespace(name=row.name, phone=row.phone, email=row.email, attributes=row.attributes),
                company,
            )
            text = templates.render(variant, values, seed=str(row.id))
            if campaign.avoid_repeats and await _sent_lately(
                connection, org, row.customer_id, text_hash(text), now
            ):
                reason = "repeat"
        if reason is not None:
            await connection.execute(
                statements["skip"], {"org": org, "recipient": row.id, "reason": reason, "now": now}
            )
            skipped.append(
                Outcome(row.id, campaign.id, row.customer_id, self.channel_id, "skipped", now, error=reason)
            )
            return False
        await connection.execute(
            statements["mark_sending"],
            {
                "org": org,
                "recipient": row.id,
                "channel": self.channel_id,
                "holder": self.holder,
                "begin": begin,
                "text": text,
                "digest": text_hash(text),
                "now": now,
            },
        )
        return Claim(
            row.id, campaign.id, row.customer_id, row.phone, text, campaign.media_id, begin, self.holder
        )

    async def _send(self, claim: Claim) -> None:
        channel = self.channel
        assert channel is not None
        try:
            begin_at = claim.begin_at or utcnow()
            await asyncio.sleep(max(0.0, (begin_at - utcnow()).total_seconds()))
            # Over within HUB_SEND_SECONDS of its slot, whatever the channel does: the sweep
            # settles it only after that.
            finish_by = begin_at.timestamp() + self.runtime.settings.send_seconds
            outbound = OutboundMessage(
                message_id=claim.recipient_id,
                conversation_id=None,
                recipient=claim.phone,
                text=claim.text,
                kind="text",
                attachments=await self._attachments(claim.media_id),
                finish_by=finish_by,
            )
            if outbound.attachments:
                outbound = msgspec.structs.replace(outbound, kind=outbound.attachments[0].kind)
            if time.time() >= finish_by:  # so late that it would not finish: not sent, it waits
                self.writer.add(self.organization_id, [_outcome(claim, channel.id, "pending")])
                return
            try:
                result = await send_message(channel, outbound)
            except ChannelError as error:
                self.writer.add(self.organization_id, [await self._after_error(channel, claim, error)])
                return
            except Exception as error:  # the adapter broke: whether it sent cannot be told
                log.warning("campaign send broke", recipient=str(claim.recipient_id), error=repr(error)[:300])
                self.writer.add(
                    self.organization_id,
                    await self._after_error(
                        channel, claim, ChannelError(repr(error)[:300], retryable=True, in_doubt=True)
                    ),
                )
                return
            self.unreachable_in_a_row = 0
            self.writer.add(
                self.organization_id, [_outcome(claim, channel.id, "sent", external_id=result.external_id)]
            )
        finally:
            self.slots.release()

    async def _after_error(self, channel: Channel, claim: Claim, error: ChannelError) -> Outcome:
        if error.in_doubt:
            return await resolve(channel, claim, reason=error.reason)
        if error.retryable:  # it never went out: the recipient waits for the next slot
            self.unreachable_in_a_row += 1
            self.last_error = error.reason
            return _outcome(claim, channel.id, "pending", error=error.reason)
        return _outcome(claim, channel.id, "failed", error=error.reason)

    async def _attachments(self, media_id: uuid.UUID | None) -> tuple[OutboundAttachment, ...]:
        if media_id is None:
            return ()
        if media_id not in self.attachments:
            settings = self.runtime.settings
            async with self.runtime.db.session(self.organization_id) as session:
                media = await session.get(Media, media_id)
            if media is None:
                return ()
            public = settings.public_url
            self.attachments[media_id] = OutboundAttachment(
                kind=media.kind,
                content_type=media.content_type,
                filename=media.filename,
                data=await storage.media_store(settings).read(media.key),
                url=storage.media_link(settings, public, media.id, seconds=86400) if public else None,
            )
        return (self.attachments[media_id],)

    async def _drain(self) -> None:
        if self.in_flight:
            await asyncio.gather(*self.in_flight, return_exceptions=True)
        await self.writer.write()

    async def _pause_all(self, reason: str, details: dict[str, Any]) -> None:
        async with self.runtime.db.session(self.organization_id) as session:
            await pause_on_channel(session, self.channel_id, reason, details)
            await session.commit()

    async def _finish_campaigns(self) -> None:
        async with self.runtime.db.session(self.organization_id) as session:
            ids = list(
                await session.scalars(
                    select(Campaign.id)
                    .join(CampaignChannel, CampaignChannel.campaign_id == Campaign.id)
                    .where(CampaignChannel.channel_id == self.channel_id, Campaign.status == "running")
                )
            )
            for campaign_id in ids:
                await finish_if_done(session, campaign_id)
            await session.commit()


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
    return found  # type: ignore[no-any-return]


def _outcome(claim: Claim, channel_id: uuid.UUID, status: str, **values: Any) -> Outcome:
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


async def _sent_lately(
    connection: Any, org: uuid.UUID, customer_id: uuid.UUID, digest: str, now: datetime
) -> bool:
    """The same text went to this customer within a day, from any campaign (or is going now)."""
    found = await connection.scalar(
        select(_RECIPIENT.c.id)
        .where(
            _RECIPIENT.c.organization_id == org,
            _RECIPIENT.c.customer_id == customer_id,
            _RECIPIENT.c.text_hash == digest,
            or_(
                _RECIPIENT.c.sent_at >= now - REPEAT_WINDOW,
                and_(_RECIPIENT.c.status == "sending", _RECIPIENT.c.claimed_at >= now - REPEAT_WINDOW),
            ),
        )
        .limit(1)
    )
    return found is not None


async def resolve(channel: Channel, claim: Claim, *, reason: str) -> Outcome:
    """A send whose fate is unknown: ask the channel's record; if it cannot tell, `unknown`."""
    try:
        record: SentRecord | None = await adapter_for(channel.kind).find_sent(channel, claim.recipient_id)
    except Exception as error:  # asking is best effort
        log.warning("channel record unavailable", channel=str(channel.id), error=repr(error)[:200])
        record = None
    if record is None:
        return _outcome(claim, channel.id, "unknown", error=f"in doubt: {reason}"[:500])
    if record.found:
        return _outcome(claim, channel.id, "sent", external_id=record.external_id or str(claim.recipient_id))
    return _outcome(claim, channel.id, "pending", error=reason)


# Writing what happened, in batches


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
                    organization_id=session.organization_id,  # type: ignore[arg-type]
                    campaign_id=campaign_id,
                    messages=[
                        SentMessage(
                            message_id=o.recipient_id,
                            customer_id=o.customer_id,  # type: ignore[arg-type]
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


async def pause_on_failures(session: HubAsyncSession, campaign_id: uuid.UUID) -> None:
    campaign = await session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status != "running":
        return
    window = campaign.failure_window
    latest = list(
        await session.scalars(
            select(CampaignRecipient.status)
            .where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.status.in_(("sent", "failed", "unknown")),
                CampaignRecipient.finished_at.is_not(None),
            )
            .order_by(CampaignRecipient.finished_at.desc())
            .limit(window)
        )
    )
    failed = latest.count("failed")
    if len(latest) >= window and failed * 100 >= campaign.failure_threshold * window:
        _pause(session, campaign, "failures", {"failed": failed, "window": window})


def _pause(session: HubAsyncSession, campaign: Campaign, reason: str, details: dict[str, Any]) -> None:
    campaign.status, campaign.paused_at = "paused", utcnow()
    campaign.pause_reason, campaign.pause_details = reason, details
    log.info("campaign paused", campaign=str(campaign.id), reason=reason)
    push_campaign(
        session,
        "campaignUpdated",
        {"campaignId": str(campaign.id), "status": "paused", "reason": reason, "details": details},
    )


async def pause_on_channel(
    session: HubAsyncSession, channel_id: uuid.UUID, reason: str, details: dict[str, Any]
) -> None:
    """Every running campaign sending through this channel pauses, with the reason shown."""
    campaigns = await session.scalars(
        select(Campaign)
        .join(CampaignChannel, CampaignChannel.campaign_id == Campaign.id)
        .where(CampaignChannel.channel_id == channel_id, Campaign.status == "running")
        .with_for_update(of=Campaign)
    )
    for campaign in campaigns:
        _pause(session, campaign, reason, details)


async def finish_if_done(session: HubAsyncSession, campaign_id: uuid.UUID) -> bool:
    """A running campaign with no recipient left pending or sending is completed: its counts are
    taken afresh and `campaignCompleted` carries its results."""
    left = await session.scalar(
        select(CampaignRecipient.id)
        .where(
            CampaignRecipient.campaign_id == campaign_id, CampaignRecipient.status.in_(("pending", "sending"))
        )
        .limit(1)
    )
    if left is not None:
        return False
    done = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "running")
        .values(status="completed", finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    counts = await counts_of(session, campaign_id)
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id)
        .values(sent=counts.sent, failed=counts.failed, skipped=counts.skipped, unknown=counts.unknown)
        .execution_options(synchronize_session=False)
    )
    campaign = await session.get(Campaign, campaign_id, populate_existing=True)
    assert campaign is not None
    push_campaign(session, "campaignProgress", _progress(campaign))
    outcome = await results(session, campaign_id)
    push_campaign(
        session,
        "campaignCompleted",
        {"campaignId": str(campaign_id), "results": msgspec.to_builtins(outcome)},
    )
    return True


def _progress(campaign: Campaign) -> dict[str, Any]:
    current = campaign.sent + campaign.failed + campaign.skipped + campaign.unknown
    return {
        "campaignId": str(campaign.id),
        "current": current,
        "total": campaign.total,
        "sent": campaign.sent,
        "failed": campaign.failed,
        "skipped": campaign.skipped,
        "unknown": campaign.unknown,
        "remaining": max(0, campaign.total - current),
        "status": campaign.status,
    }


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
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return
    campaign = await session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is not None:
        push_campaign(session, "campaignProgress", _progress(campaign))


# The sweep: what no sender is doing


async def sweep(runtime: Runtime) -> int:
    """Start scheduled campaigns that are due, settle sends left in doubt, finish campaigns with
    nothing left, and wake a sender on every channel that has work."""
    from campaigns.services import begin_scheduled

    now = utcnow()
    async with runtime.db.system_session() as session:
        due = (
            await session.execute(
                select(Campaign.organization_id, Campaign.id).where(
                    Campaign.status == "scheduled", Campaign.starts_at <= now
                )
            )
        ).all()
        running = (
            await session.execute(
                select(Campaign.organization_id, Campaign.id, CampaignChannel.channel_id)
                .join(CampaignChannel, CampaignChannel.campaign_id == Campaign.id)
                .where(Campaign.status == "running")
            )
        ).all()
    for organization_id, campaign_id in due:
        await begin_scheduled(runtime, organization_id, campaign_id)
    settled = await settle_in_doubt(runtime)
    async with runtime.db.system_session() as session:  # receipts whose send never wrote an outcome
        await session.execute(delete(EarlyReceipt).where(EarlyReceipt.created_at < now - EARLY_RECEIPTS_KEPT))
        await session.commit()
    woken: set[tuple[uuid.UUID, uuid.UUID]] = set()
    finished: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for organization_id, campaign_id, channel_id in running:
        finished.add((organization_id, campaign_id))
        woken.add((organization_id, channel_id))
    for organization_id, campaign_id in finished:
        async with runtime.db.session(organization_id) as session:
            await finish_if_done(session, campaign_id)
            await session.commit()
    for organization_id, channel_id in woken:
        async with runtime.db.session(organization_id) as session:
            await ensure_pacing(session, [channel_id])
            await session.commit()
        await kick(
            "campaigns.send_on_channel", organization_id=str(organization_id), channel_id=str(channel_id)
        )
    return settled


async def settle_in_doubt(runtime: Runtime, limit: int = 500) -> int:
    """Recipients left `sending` once their send is surely over (its time to finish passed, and
    its sender had a moment to write it): the channel's record decides. Each is settled over the
    claim it was read with, so a sender's late outcome and this never both count."""
    now = utcnow()
    over_before = now - timedelta(seconds=runtime.settings.send_seconds) - SETTLE_MARGIN
    async with runtime.db.system_session() as session:
        stale = (
            await session.execute(
                select(CampaignRecipient, ChannelPacing.lease_holder, ChannelPacing.lease_until)
                .outerjoin(ChannelPacing, ChannelPacing.channel_id == CampaignRecipient.channel_id)
                .where(CampaignRecipient.status == "sending", CampaignRecipient.claimed_at < over_before)
                .limit(limit)
            )
        ).all()
    settled = 0
    channels: dict[uuid.UUID, Channel | None] = {}
    for recipient, holder, lease_until in stale:
        if holder == recipient.claimed_by and lease_until is not None and lease_until > now:
            continue  # its sender is alive and will write it
        organization_id = recipient.organization_id
        async with runtime.db.session(organization_id) as session:
            if recipient.channel_id not in channels:
                channels[recipient.channel_id] = await session.get(Channel, recipient.channel_id)
            channel = channels[recipient.channel_id]
            claim = Claim(
                recipient.id,
                recipient.campaign_id,
                recipient.customer_id,
                recipient.phone,
                recipient.text or "",
                await session.scalar(select(Campaign.media_id).where(Campaign.id == recipient.campaign_id)),
                claimed_by=recipient.claimed_by,
            )
            if channel is None:
                outcome = Outcome(
                    recipient.id,
                    recipient.campaign_id,
                    recipient.customer_id,
                    recipient.channel_id,
                    "unknown",
                    now,
                    error="in doubt: the channel was removed",
                    claimed_by=recipient.claimed_by,
                )
            else:
                outcome = await resolve(channel, claim, reason="the sender stopped before it knew")
            log.info("campaign send settled", recipient=str(recipient.id), status=outcome.status)
            await record_outcomes(session, [outcome])
        settled += 1
    return settled


# Receipts and replies


async def follow_receipt(
    runtime: Runtime,
    organization_id: uuid.UUID,
    channel_id: uuid.UUID,
    external_id: str,
    status: str,
    reason: str | None,
) -> None:
    """A receipt for a campaign message moves its recipient on (read implies delivered). One
    that comes before its send's outcome is written is kept, and applied with the outcome."""
    async with runtime.db.session(organization_id) as session:
        if await _apply_receipt(session, channel_id, external_id, status, reason):
            await session.commit()
            return
        lately = await session.scalar(
            select(ChannelPacing.last_send_at).where(ChannelPacing.channel_id == channel_id)
        )
        if lately is None or lately < utcnow() - EARLY_RECEIPTS_KEPT:
            return  # this channel sends no campaign now: a receipt for a reply, or for nothing
        early = EarlyReceipt(channel_id=channel_id, external_id=external_id, status=status, reason=reason)
        session.add(early)
        await session.commit()
        early_id = early.id
    # The outcome may have been written between the look and the keeping: look once more.
    async with runtime.db.session(organization_id) as session:
        if await _apply_receipt(session, channel_id, external_id, status, reason):
            await session.execute(delete(EarlyReceipt).where(EarlyReceipt.id == early_id))
            await session.commit()


async def _apply_receipt(
    session: HubAsyncSession, channel_id: uuid.UUID, external_id: str, status: str, reason: str | None
) -> bool:
    """Whether a sent recipient of the channel has this external id (and took the receipt)."""
    now = utcnow()
    r = CampaignRecipient
    target = and_(r.channel_id == channel_id, r.external_id == external_id)
    if status in ("delivered", "read"):
        values: dict[str, Any] = {"delivered_at": func.coalesce(r.delivered_at, now)}
        if status == "read":
            values["read_at"] = func.coalesce(r.read_at, now)
        moved = await session.execute(
            update(r)
            .where(target, r.status == "sent")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(moved.rowcount)  # type: ignore[attr-defined]
    if status == "failed":
        found = await session.scalar(select(r.status).where(target))
        if found is None:
            return False
        failed = (
            await session.execute(
                update(r)
                .where(target, r.status == "sent", r.read_at.is_(None))
                .values(status="failed", error=(reason or "failed on the channel")[:500])
                .returning(r.campaign_id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        for (campaign_id,) in failed:
            await session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(sent=Campaign.sent - 1, failed=Campaign.failed + 1)
                .execution_options(synchronize_session=False)
            )
        return found != "sending"
    return True  # "sent" says nothing the outcome does not


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
            await _apply_receipt(
                session, receipt.channel_id, receipt.external_id, receipt.status, receipt.reason
            )
            await session.delete(receipt)


REPLY_WINDOW = timedelta(days=7)


async def customer_replied(
    runtime: Runtime, organization_id: uuid.UUID, customer_id: uuid.UUID, *, at: datetime | None = None
) -> None:
    """A customer who wrote (`at`, else now) within a week after a campaign message replied to it;
    marking it again changes nothing."""
    now = at or utcnow()
    r = CampaignRecipient
    async with runtime.db.session(organization_id) as session:
        replied = (
            await session.execute(
                update(r)
                .where(
                    r.customer_id == customer_id,
                    r.status == "sent",
                    r.replied_at.is_(None),
                    r.sent_at >= now - REPLY_WINDOW,
                    r.sent_at <= now,
                )
                .values(
                    replied_at=now,
                    delivered_at=func.coalesce(r.delivered_at, now),
                    read_at=func.coalesce(r.read_at, now),
                )
                .returning(r.id, r.campaign_id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        await record_activities(
            session,
            [
                {
                    "customer_id": customer_id,
                    "kind": "campaign_replied",
                    "details": {"campaign_id": str(campaign_id), "message_id": str(recipient_id)},
                    "key": f"campaign_replied:{recipient_id}",
                    "at": now,
                }
                for recipient_id, campaign_id in replied
            ],
        )
        await session.commit()
