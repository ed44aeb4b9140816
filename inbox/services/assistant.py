"""The assistant that answers customers: on the channels and in the hours an admin chooses, it
answers from the knowledge base alone, and hands the conversation to the team (in turn or
unassigned, with a private note saying why and what was asked) when it is unsure, when the
customer asks for a person, after a number of answers, or when the AI server is down. It stops
for a conversation once a person of the team writes in it, and never answers an opt-out, a
customer who opted out, or a conversation a person holds. Its messages are marked as its own."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import structlog
from sqlalchemy import exists, func, select

from channels.models import Channel
from crm.models import Customer
from crm.services import asks_to_opt_out
from hub import ai
from hub.db import HubAsyncSession, organization_row, utcnow
from hub.errors import HubError, InvalidInput
from hub.i18n import N_, find_keyword, translate
from hub.kept import Kept
from hub.models import Organization
from hub.runtime import Runtime
from hub.tasks import kick
from inbox.models import AssistantSettings, AssistantThread, Conversation, Message
from inbox.schemas import AssistantHours, AssistantReport, AssistantSettingsIn, AssistantSettingsOut
from inbox.services.assist import knowledge_for, transcript_of
from inbox.services.replies import queue_reply
from inbox.services.routing import assign_in_turn
from inbox.views import push_conversation

log = structlog.get_logger(__name__)

# Asking for a person, in the customer's words (Arabic with or without attached prefixes).
PERSON_WORDS = (
    "agent",
    "human",
    "person",
    "real person",
    "representative",
    "operator",
    "someone",
    "موظف",
    "شخص",
    "انسان",
    "بشري",
    "ممثل",
    "خدمة العملاء",
)
# What the model answers when the knowledge does not answer the question.
UNSURE = "[HANDOFF]"


class Setup(msgspec.Struct, frozen=True):
    """What the inbound path asks on every message, kept a few seconds per process."""

    enabled: bool
    channel_ids: frozenset[uuid.UUID]
    hours: tuple[tuple[int, str, str], ...]
    time_zone: str


kept_setups: Kept[uuid.UUID, Setup] = Kept(seconds=5.0)


async def setup_of(session: HubAsyncSession) -> Setup:
    organization_id = session.organization_id
    assert organization_id is not None
    found = kept_setups.get(organization_id)
    if found is not None:
        return found
    settings = await session.scalar(select(AssistantSettings))
    time_zone = await session.scalar(select(Organization.time_zone)) or "UTC"
    setup = Setup(
        enabled=bool(settings and settings.enabled and settings.channel_ids),
        channel_ids=frozenset(uuid.UUID(c) for c in (settings.channel_ids if settings else [])),
        hours=tuple((h["day"], h["start"], h["end"]) for h in (settings.hours if settings else [])),
        time_zone=time_zone,
    )
    return kept_setups.put(organization_id, setup)


def takes(setup: Setup, channel_id: uuid.UUID, at: datetime) -> bool:
    """Whether the assistant answers on this channel at this moment."""
    if not setup.enabled or channel_id not in setup.channel_ids:
        return False
    if not setup.hours:
        return True
    local = at.astimezone(ZoneInfo(setup.time_zone))
    clock = local.strftime("%H:%M")
    return any(day == local.weekday() and start <= clock < end for day, start, end in setup.hours)


# Settings


async def assistant_settings(session: HubAsyncSession) -> AssistantSettingsOut:
    settings = await organization_row(session, AssistantSettings)
    await session.commit()
    return _out(settings)


async def update_assistant_settings(
    session: HubAsyncSession, data: AssistantSettingsIn
) -> AssistantSettingsOut:
    channels = set(await session.scalars(select(Channel.id).where(Channel.id.in_(data.channel_ids))))
    unknown = [str(c) for c in data.channel_ids if c not in channels]
    if unknown:
        raise InvalidInput(N_("There is no such channel."), field="channel_ids")
    if any(hours.start >= hours.end for hours in data.hours):
        raise InvalidInput(N_("Each period must end after it starts."), field="hours")
    settings = await organization_row(session, AssistantSettings)
    settings.enabled = data.enabled
    settings.channel_ids = [str(c) for c in data.channel_ids]
    settings.hours = [msgspec.to_builtins(hours) for hours in data.hours]
    settings.handoff_after_turns = data.handoff_after_turns
    settings.handoff_to = data.handoff_to
    await session.commit()
    kept_setups.forget(settings.organization_id)  # this process answers by the new settings at once
    return _out(settings)


def _out(settings: AssistantSettings) -> AssistantSettingsOut:
    return AssistantSettingsOut(
        enabled=settings.enabled,
        channel_ids=[uuid.UUID(c) for c in settings.channel_ids or []],
        hours=[msgspec.convert(h, AssistantHours) for h in settings.hours or []],
        handoff_after_turns=settings.handoff_after_turns,
        handoff_to=settings.handoff_to,
    )


async def assistant_report(session: HubAsyncSession, since: datetime) -> AssistantReport:
    threads = select(AssistantThread).where(AssistantThread.created_at >= since).subquery()
    answered = await session.scalar(select(func.count()).select_from(threads).where(threads.c.turns > 0))
    handed_off = await session.scalar(
        select(func.count()).select_from(threads).where(threads.c.state == "handed_off")
    )
    resolved = await session.scalar(
        select(func.count())
        .select_from(threads)
        .join(Conversation, Conversation.id == threads.c.conversation_id)
        .where(threads.c.state == "answering", threads.c.turns > 0, Conversation.status == "resolved")
    )
    messages = await session.scalar(
        select(func.count()).where(
            Message.by_assistant.is_(True), Message.private.is_(False), Message.created_at >= since
        )
    )
    return AssistantReport(
        since=since,
        answered=answered or 0,
        handed_off=handed_off or 0,
        resolved=resolved or 0,
        messages=messages or 0,
    )


# Answering


async def message_arrived(
    runtime: Runtime,
    organization_id: uuid.UUID,
    *,
    channel_id: uuid.UUID,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
) -> None:
    """Hand a customer's message to the assistant's task where the assistant answers on its
    channel now (asked of the kept settings: most organizations have no assistant)."""
    setup = kept_setups.get(organization_id)
    if setup is None:
        async with runtime.db.session(organization_id) as session:
            setup = await setup_of(session)
    if not takes(setup, channel_id, utcnow()):
        return
    await kick(
        "inbox.assistant_answer",
        organization_id=str(organization_id),
        conversation_id=str(conversation_id),
        message_id=str(message_id),
    )


async def answer(
    runtime: Runtime, organization_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> None:
    """The assistant's turn after a customer's message: answer, hand off, or stay out."""
    async with runtime.db.session(organization_id) as session:
        conversation = await session.get(Conversation, conversation_id)
        message = await session.get(Message, message_id)
        if conversation is None or message is None or message.direction != "inbound":
            return
        if not takes(await setup_of(session), conversation.channel_id, message.created_at):
            return
        newer = await session.scalar(
            select(
                exists().where(
                    Message.conversation_id == conversation_id,
                    Message.direction == "inbound",
                    Message.id > message_id,
                )
            )
        )
        if newer:
            return  # the customer wrote again: that message's turn answers both
        thread = await _thread(session, conversation_id)
        if thread.state != "answering":
            return
        customer = await session.get_one(Customer, conversation.customer_id)
        settings = await organization_row(session, AssistantSettings)
        if conversation.assignee_id is not None or await _team_wrote(session, conversation_id):
            thread.state = "stopped"  # a person holds it
            await session.commit()
            return
        if customer.opted_out or await asks_to_opt_out(session, message.text):
            await session.commit()  # the opt-out has its own answer; nothing more is said
            return
        language = customer.language or await session.scalar(select(Organization.default_language)) or "ar"
        if message.text and find_keyword(message.text, PERSON_WORDS):
            await _hand_off(runtime, session, conversation, thread, settings, "asked_for_person", language)
            return
        if thread.turns >= settings.handoff_after_turns:
            await _hand_off(runtime, session, conversation, thread, settings, "turns", language)
            return
        endpoint = await ai.endpoint_for(runtime, session)
        if endpoint is None or not await ai.ai_switched_on(session):
            await _hand_off(runtime, session, conversation, thread, settings, "ai_unavailable", language)
            return
        turns = await transcript_of(session, conversation_id)
        await session.commit()  # no transaction open while the AI server works
    question = " ".join(turn["content"] for turn in turns if turn["role"] == "user")
    reply: str | None = None
    try:
        async with runtime.db.session(organization_id) as session:
            await ai.check_request(runtime, session)  # the plan's credits and the rate limit
        sources, knowledge = await knowledge_for(runtime, organization_id, endpoint, question[-2000:])
        if sources:
            instruction = (
                "You are the customer support assistant of this business, writing to a customer. "
                "Answer only from the knowledge below, briefly and politely. If the knowledge does "
                f"not answer the question, answer exactly {UNSURE} and nothing else. Never promise "
                f"what the knowledge does not say.\n\nKnowledge:\n{knowledge}"
            )
            written = await ai.complete(
                runtime, organization_id, endpoint, [ai.system_message(instruction, language), *turns]
            )
            reply, _named = ai.cited(written, sources)
            reply = reply.strip()
    except HubError as failure:
        log.info("assistant hands off: the AI server failed", reason=failure.message)
        reason = "ai_unavailable"
    else:
        reason = "unsure"
    async with runtime.db.session(organization_id) as session:
        conversation = await session.get_one(Conversation, conversation_id)
        thread = await _thread(session, conversation_id)
        settings = await organization_row(session, AssistantSettings)
        if (
            thread.state != "answering"
            or conversation.assignee_id is not None
            or await _team_wrote(session, conversation_id)
        ):
            await session.commit()  # a person took it meanwhile
            return
        if not reply or UNSURE in reply:
            await _hand_off(runtime, session, conversation, thread, settings, reason, language)
            return
        thread.turns += 1
        await queue_reply(
            session,
            conversation,
            sender_id=None,
            text=reply,
            private=False,
            reply_to=None,
            media=[],
            by_assistant=True,
        )


async def _thread(session: HubAsyncSession, conversation_id: uuid.UUID) -> AssistantThread:
    found = await session.scalar(
        select(AssistantThread).where(AssistantThread.conversation_id == conversation_id)
    )
    if found is None:
        found = AssistantThread(conversation_id=conversation_id, turns=0, state="answering")
        session.add(found)
        await session.flush()
    return found


async def _team_wrote(session: HubAsyncSession, conversation_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    Message.conversation_id == conversation_id,
                    Message.direction == "outbound",
                    Message.private.is_(False),
                    Message.sender_user_id.is_not(None),
                )
            )
        )
    )


HANDOFF_REASONS = {
    "asked_for_person": N_("The customer asked for a person."),
    "turns": N_("The assistant answered as many times as it may in one conversation."),
    "unsure": N_("The knowledge base does not answer the customer's question."),
    "ai_unavailable": N_("The AI service is not answering right now."),
}


async def _hand_off(
    runtime: Runtime,
    session: HubAsyncSession,
    conversation: Conversation,
    thread: AssistantThread,
    settings: AssistantSettings,
    reason: str,
    language: str,
) -> None:
    """Give the conversation to the team: a private note with why and what the customer asked
    (in the organization's language), a word to the customer (in theirs), and an assignee in turn
    where the settings say so (else it waits, unassigned)."""
    thread.state, thread.reason = "handed_off", reason
    team_language = await session.scalar(select(Organization.default_language)) or "ar"
    asked = [
        text
        for text in await session.scalars(
            select(Message.text)
            .where(Message.conversation_id == conversation.id, Message.direction == "inbound")
            .order_by(Message.id.desc())
            .limit(3)
        )
        if text
    ]
    note = translate(team_language, N_("The assistant handed this conversation to the team."))
    note += " " + translate(team_language, HANDOFF_REASONS[reason])
    if asked:
        note += "\n" + translate(team_language, N_("The customer wrote:")) + "\n" + "\n".join(reversed(asked))
    await queue_reply(
        session,
        conversation,
        sender_id=None,
        text=note,
        private=True,
        reply_to=None,
        media=[],
        by_assistant=True,
    )
    if settings.handoff_to == "round_robin":
        await assign_in_turn(runtime, session, conversation)
    await push_conversation(session, conversation, await session.get_one(Customer, conversation.customer_id))
    await queue_reply(
        session,
        conversation,
        sender_id=None,
        text=translate(language, N_("A member of our team will answer you shortly.")),
        private=False,
        reply_to=None,
        media=[],
        by_assistant=True,
    )
