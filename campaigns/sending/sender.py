"""Sending campaigns: one sender per channel at a time, every send paced, every recipient once.

A sender holds its channel's lease (a row in `channel_pacing`, so it holds across processes and
restarts) for a turn of a few seconds. Each send first claims its recipient and the channel's next
pacing slot in one transaction: the recipient becomes `sending`, with the sender's mark, and the
pacing state moves on. Only then does the message go out, carrying the recipient's id as its
idempotency key, and it is over within `HUB_SEND_SECONDS` of its slot, answered or not."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import msgspec
import structlog
from sqlalchemy import and_, bindparam, or_, select, update

from campaigns import templates
from campaigns.lifecycle import finish_if_done, pause_on_channel
from campaigns.models import Campaign, CampaignChannel, CampaignRecipient, ChannelPacing
from campaigns.pacing import PacingState, next_slot, record_send, rules_of, state_of
from campaigns.sending.outcomes import Claim, Outcome, outcome_of, resolve, writer_of
from campaigns.services import hold_sends, window_times
from channels.adapters import ChannelError, OutboundAttachment, OutboundMessage, send_message
from channels.models import Channel
from crm.models import Company, Customer
from hub import metrics, storage
from hub.db import table_of, utcnow
from hub.models import Media, Organization
from hub.runtime import Runtime
from hub.tasks import kick, schedule

log = structlog.get_logger(__name__)


LEASE = timedelta(seconds=20)
TURN_SECONDS = 10.0  # a sender gives its channel back this often, so channels spread over workers
MAX_IN_FLIGHT = 16  # sends of one channel waiting for their answer at once
REPEAT_WINDOW = timedelta(hours=24)
UNREACHABLE_IN_A_ROW = 3
LONGEST_NAP = 15.0  # seconds a sender waits for its next slot; longer, and a timed job wakes it
CATCH_UP = timedelta(seconds=1)
RENEW_AFTER = timedelta(seconds=5)  # a send renews the lease too; a sender that only waits, this often
STATE_CHECK = timedelta(seconds=1)  # how often the channel's connection state is read again
# A send is claimed this long before its slot and goes out at the slot, so the claim's own time
# never delays it; a pause that returns within this moment lets one already claimed go.
LOOKAHEAD = timedelta(milliseconds=50)
_chooser = random.SystemRandom()
_PACING, _CAMPAIGN, _LINK = table_of(ChannelPacing), table_of(Campaign), table_of(CampaignChannel)
_RECIPIENT, _CHANNEL, _ORGANIZATION = table_of(CampaignRecipient), table_of(Channel), table_of(Organization)
_CUSTOMER, _COMPANY = table_of(Customer), table_of(Company)


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
        return bool(taken.rowcount)  # type: ignore[attr-defined]  # an UPDATE's result has rowcount; the stubs type it as Result

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
                metrics.PACING_WAITS.observe(max(delay, 0.0))
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
            after = record_send(state, rules, state.not_before if on_time else begin, _chooser)  # type: ignore[arg-type]  # not_before is set once the state has a slot
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
            if utcnow().timestamp() >= finish_by:  # so late that it would not finish: not sent, it waits
                self._settled(outcome_of(claim, channel.id, "pending"))
                return
            try:
                result = await send_message(channel, outbound)
            except ChannelError as error:
                self._settled(await self._after_error(channel, claim, error))
                return
            except Exception as error:  # the adapter broke: whether it sent cannot be told
                log.warning("campaign send broke", recipient=str(claim.recipient_id), error=repr(error)[:300])
                broke = ChannelError(repr(error)[:300], retryable=True, in_doubt=True)
                self._settled(await self._after_error(channel, claim, broke))
                return
            self.unreachable_in_a_row = 0
            self._settled(outcome_of(claim, channel.id, "sent", external_id=result.external_id))
        finally:
            self.slots.release()

    def _settled(self, outcome: Outcome) -> None:
        metrics.CAMPAIGN_SENDS.labels("retry" if outcome.status == "pending" else outcome.status).inc()
        self.writer.add(self.organization_id, [outcome])

    async def _after_error(self, channel: Channel, claim: Claim, error: ChannelError) -> Outcome:
        if error.in_doubt:
            return await resolve(channel, claim, reason=error.reason)
        if error.retryable:  # it never went out: the recipient waits for the next slot
            self.unreachable_in_a_row += 1
            self.last_error = error.reason
            return outcome_of(claim, channel.id, "pending", error=error.reason)
        return outcome_of(claim, channel.id, "failed", error=error.reason)

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
