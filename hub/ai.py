"""AI assistance's client and metering, shared by the packages whose data it reads: any
OpenAI-compatible server (the installation's `HUB_AI_BASE_URL` and `HUB_AI_MODEL`, or an
organization's own, called through the guarded client), through the `openai` library.

Every request is checked before it leaves (the `ai` module on, the plan's AI credits left, the
organization's requests a minute), counts its tokens as AI credits once answered, and fails with a
clear, localized message: the server slow, rate-limited, failing or cut off never blocks anything
else. A streamed answer is relayed token by token to the sockets of the person who asked, and
only them (`aiChunk`, `aiDone`, `aiFailed`); they may cancel it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx
import openai
import structlog

from hub.auth import CurrentUser
from hub.config import Settings
from hub.db import HubAsyncSession
from hub.errors import HubError, NotFound, TooManyRequests
from hub.i18n import N_, choose_language, translate
from hub.outbound import guarded_client
from hub.realtime import AIChunk, AIDone, AIFailed, AISource, SocketEvent
from hub.runtime import Runtime

log = structlog.get_logger(__name__)

# What one request may carry of a conversation: the newest messages, up to this many characters.
MAX_PROMPT_CHARACTERS = 24_000


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    api_key: str
    model: str
    embeddings_model: str | None
    # An organization's own server: an address a tenant gave, called through the guarded client.
    tenant_given: bool = False


def endpoint_of(settings: Settings) -> Endpoint | None:
    """The installation's AI server; None when AI is not configured (the features are absent)."""
    if not settings.ai_base_url or not settings.ai_model:
        return None
    return Endpoint(
        base_url=settings.ai_base_url,
        # Local servers take any key; the library insists on one.
        api_key=settings.ai_api_key or "none",
        model=settings.ai_model,
        embeddings_model=settings.ai_embeddings_model,
    )


class AIUnavailable(HubError):
    """The AI server did not answer in time, failed or broke off: the agent tries again later."""

    status_code = 503
    default_message = N_("The AI service is not answering right now. Try again in a moment.")


async def endpoint_for(runtime: Runtime, session: HubAsyncSession) -> Endpoint | None:
    """The organization's own AI server where it set one, else the installation's; None: no AI
    for this organization (the features are absent)."""
    from sqlalchemy import select

    from hub.models import AISettings
    from hub.sealing import unseal

    own = await session.scalar(select(AISettings))
    if own is None:
        return endpoint_of(runtime.settings)
    key = unseal(runtime.settings, own.api_key_sealed) if own.api_key_sealed else None
    return Endpoint(
        base_url=own.base_url,
        api_key=key or "none",
        model=own.model,
        embeddings_model=own.embeddings_model,
        tenant_given=True,
    )


async def ai_available(runtime: Runtime, session: HubAsyncSession) -> bool:
    """Whether the AI features are there for this organization: a server for it, and the `ai`
    module not switched off."""
    return await endpoint_for(runtime, session) is not None and await ai_switched_on(session)


async def check_request(runtime: Runtime, session: HubAsyncSession) -> Endpoint:
    """Whether this organization may ask the AI now: 404 without AI here, 402 past the plan's AI
    credits, 429 past its requests a minute. (The module switched on and in the plan is the
    endpoints' guard, `hub.permissions.module_on("ai")`.)"""
    from hub.billing.services.limits import require_room

    endpoint = await endpoint_for(runtime, session)
    if endpoint is None:
        raise NotFound(N_("AI assistance is not configured on this installation."))
    await require_room(session, "ai_credits_per_month")
    window = 60
    used = await runtime.counters.hit(f"ai:{session.organization_id}", window)
    if used > runtime.settings.ai_requests_per_minute:
        raise TooManyRequests(
            N_("Too many AI requests from this organization. Try again in a minute."),
            headers={"Retry-After": str(window)},
        )
    return endpoint


_clients: dict[tuple[int, str, str, float, bool], openai.AsyncOpenAI] = {}


def client_of(runtime: Runtime, endpoint: Endpoint) -> openai.AsyncOpenAI:
    """One client (and its pool of connections) per server, key and event loop, kept for the
    process's life. One try per request: a person is waiting, and a failure is told to them at
    once rather than retried."""
    timeout = runtime.settings.ai_timeout_seconds
    key = (
        id(asyncio.get_running_loop()),
        endpoint.base_url,
        endpoint.api_key,
        timeout,
        endpoint.tenant_given,
    )
    client = _clients.get(key)
    if client is None:
        if len(_clients) >= 1000:  # keys and addresses changed many times: start again
            _clients.clear()
        # A tenant's address goes through the guarded client, which refuses private and loopback
        # targets (however the name resolves, whatever it redirects to) unless the operator allows them.
        http = (
            guarded_client(runtime.settings.outbound_policy, timeout=timeout)
            if endpoint.tenant_given
            else None
        )
        client = _clients[key] = openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,
            timeout=timeout,
            max_retries=0,
            http_client=http,
        )
    return client


def _failure(error: BaseException) -> HubError:
    """What the agent is told of an AI server's failure."""
    if isinstance(error, openai.RateLimitError):
        retry = error.response.headers.get("retry-after") if error.response is not None else None
        return TooManyRequests(
            N_("The AI service is busy. Try again in a moment."),
            headers={"Retry-After": retry} if retry and retry.isdigit() else None,
        )
    if isinstance(error, openai.APITimeoutError):
        return AIUnavailable(N_("The AI service took too long to answer. Try again in a moment."))
    return AIUnavailable()


async def count_credits(session: HubAsyncSession, used: int) -> None:
    from hub.services.usage import count_usage

    await count_usage(session, "ai_credits", used)


def _estimate(messages: list[dict[str, str]], text: str) -> int:
    """Tokens, where the server did not say: about four characters each."""
    return max(1, (sum(len(m.get("content") or "") for m in messages) + len(text)) // 4)


@dataclass(frozen=True)
class Grounded:
    """A request's messages with what it is grounded in: sources numbered [1], [2]… in the
    prompt, in this order."""

    messages: list[dict[str, str]]
    sources: list[AISource]


# Work done in the answer's own task before the AI server is asked (a knowledge base search, an
# embedding of the question), so the request that started it is answered at once.
Prepare = Callable[[], Awaitable[Grounded]]
CITATION = re.compile(r"\s?\[(\d{1,2})\]")


def cited(text: str, sources: list[AISource]) -> tuple[str, list[AISource]]:
    """The answer without its [n] marks, and the sources they named, in the order named."""
    if not sources:
        return text, []
    named: list[AISource] = []
    for mark in CITATION.finditer(text):
        number = int(mark.group(1))
        if 1 <= number <= len(sources) and sources[number - 1] not in named:
            named.append(sources[number - 1])
    return CITATION.sub(lambda m: "" if 1 <= int(m.group(1)) <= len(sources) else m.group(0), text), named


@dataclass
class Running:
    user_id: uuid.UUID
    organization_id: uuid.UUID
    task: asyncio.Task[None]
    runtime: Runtime


# The answers being written in this process, by request id: their asker may cancel them.
_running: dict[str, Running] = {}


def cancel(request_id: str, *, user_id: uuid.UUID) -> bool:
    """Stop an answer being written; only its asker may (another's id is as unknown as none)."""
    running = _running.get(request_id)
    if running is None or running.user_id != user_id:
        return False
    running.task.cancel()
    return True


LANGUAGE_NAMES = {"ar": "Arabic", "en": "English"}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def system_message(instruction: str, language: str) -> dict[str, str]:
    """The instruction of a request, with the language its answer is written in."""
    # The language tag is also what tells the answer's language apart in the logs.
    return {
        "role": "system",
        "content": f"{instruction} Write in {language_name(language)}. [language:{language}]",
    }


def reader_language(user: CurrentUser) -> str:
    """The asker's language, from what their session already carries."""
    return choose_language(
        preferred=user.preferred_language,
        accept_language=None,
        organization_default=user.organization_language,
    )


def ask(
    runtime: Runtime,
    user: CurrentUser,
    endpoint: Endpoint,
    messages: list[dict[str, str]],
    prepare: Prepare | None = None,
) -> str:
    """Start an answer written to the asker's sockets alone (failures told in their language);
    the request's id."""
    return relay(
        runtime,
        organization_id=user.organization_id,
        user_id=user.id,
        language=reader_language(user),
        endpoint=endpoint,
        messages=messages,
        prepare=prepare,
    )


async def stop_answers(runtime: Runtime, grace: float = 5.0) -> None:
    """At shutdown: the answers being written here end as stopped (their askers are told and the
    credits used so far counted) before the database and sockets close."""
    tasks = [running.task for running in list(_running.values()) if running.runtime is runtime]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=grace)


def relay(
    runtime: Runtime,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    language: str,
    endpoint: Endpoint,
    messages: list[dict[str, str]],
    prepare: Prepare | None = None,
) -> str:
    """Start writing an answer for one person; its pieces go to their sockets as they come. The
    request id is answered at once; the answer follows on the sockets. `prepare`, when given,
    makes the messages (and their sources) in the answer's task instead."""
    request_id = uuid.uuid4().hex
    task = asyncio.create_task(
        _stream(runtime, organization_id, user_id, language, endpoint, messages, request_id, prepare)
    )
    _running[request_id] = Running(
        user_id=user_id, organization_id=organization_id, task=task, runtime=runtime
    )
    task.add_done_callback(lambda _task: _running.pop(request_id, None))
    return request_id


async def _stream(
    runtime: Runtime,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    language: str,
    endpoint: Endpoint,
    messages: list[dict[str, str]],
    request_id: str,
    prepare: Prepare | None,
) -> None:
    pusher = runtime.pusher

    async def tell(event: SocketEvent) -> None:
        if pusher is not None:
            await pusher.push(event.name, event, organization_id=organization_id, user_ids=[user_id])

    outgoing: asyncio.Queue[str | None] = asyncio.Queue()

    async def send_pieces() -> None:
        # Pieces that came while one was being pushed go out together: one push for them all,
        # however fast the server writes, and the stream is read on meanwhile.
        while (piece := await outgoing.get()) is not None:
            batch, ended = [piece], False
            while not outgoing.empty():
                more = outgoing.get_nowait()
                if more is None:
                    ended = True
                    break
                batch.append(more)
            await tell(AIChunk(request_id=request_id, text="".join(batch)))
            if ended:
                return

    sender = asyncio.create_task(send_pieces())

    async def pieces_sent() -> None:
        outgoing.put_nowait(None)
        await sender

    written: list[str] = []
    used: int | None = None
    sources: list[AISource] = []
    try:
        if prepare is not None:
            grounded = await prepare()
            messages, sources = grounded.messages, grounded.sources
        async for piece, tokens in _pieces(runtime, endpoint, messages):
            if piece:
                written.append(piece)
                outgoing.put_nowait(piece)
            if tokens is not None:
                used = tokens
    except asyncio.CancelledError:
        await pieces_sent()
        await _meter(runtime, organization_id, _estimate(messages, "".join(written)))
        await tell(
            AIFailed(request_id=request_id, detail=translate(language, N_("Stopped.")), cancelled=True)
        )
        return
    except Exception as error:
        failure = error if isinstance(error, HubError) else AIUnavailable()
        if not isinstance(error, HubError):
            log.exception("ai answer failed")
        await pieces_sent()
        await tell(
            AIFailed(
                request_id=request_id,
                detail=translate(language, failure.message, **failure.params),
                cancelled=False,
            )
        )
        return
    await pieces_sent()
    text = "".join(written)
    credits = used if used is not None else _estimate(messages, text)
    await _meter(runtime, organization_id, credits)
    text, named = cited(text, sources)
    await tell(AIDone(request_id=request_id, text=text, credits=credits, sources=named))


async def _pieces(
    runtime: Runtime, endpoint: Endpoint, messages: list[dict[str, str]]
) -> AsyncIterator[tuple[str, int | None]]:
    """The answer's pieces as the server writes them, and the tokens it says it used (at the end)."""
    try:
        stream = await client_of(runtime, endpoint).chat.completions.create(
            model=endpoint.model,
            messages=cast(Any, messages),
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for chunk in stream:
                piece = chunk.choices[0].delta.content or "" if chunk.choices else ""
                yield piece, (chunk.usage.total_tokens if chunk.usage is not None else None)
    except (TimeoutError, openai.APIError, httpx.HTTPError) as error:
        # httpx's own error: the connection broke off in the middle of the stream.
        log.warning("ai stream failed", error=type(error).__name__)
        raise _failure(error) from None


async def complete(
    runtime: Runtime, organization_id: uuid.UUID, endpoint: Endpoint, messages: list[dict[str, str]]
) -> str:
    """A whole answer at once, for work no person watches being written (the assistant that
    answers customers), metered; a failure is a HubError saying what went wrong."""
    try:
        answer = await client_of(runtime, endpoint).chat.completions.create(
            model=endpoint.model, messages=cast(Any, messages), stream=False
        )
    except (TimeoutError, openai.APIError, httpx.HTTPError) as error:
        log.warning("ai answer failed", error=type(error).__name__)
        raise _failure(error) from None
    text = (answer.choices[0].message.content or "") if answer.choices else ""
    used = answer.usage.total_tokens if answer.usage is not None else _estimate(messages, text)
    await _meter(runtime, organization_id, used)
    return text


async def embed(
    runtime: Runtime, organization_id: uuid.UUID, endpoint: Endpoint, texts: list[str]
) -> list[list[float]] | None:
    """The AI server's embeddings of texts, in their order, metered; None where it makes none (no
    embeddings model configured, or it failed: searching by words goes on alone)."""
    if not endpoint.embeddings_model or not texts:
        return None
    try:
        answer = await client_of(runtime, endpoint).embeddings.create(
            model=endpoint.embeddings_model, input=texts
        )
    except (TimeoutError, openai.APIError, httpx.HTTPError) as error:
        log.warning("ai embeddings failed", error=type(error).__name__)
        return None
    used = answer.usage.total_tokens if answer.usage is not None else sum(len(t) for t in texts) // 4
    await _meter(runtime, organization_id, max(1, used))
    return [item.embedding for item in sorted(answer.data, key=lambda item: item.index)]


async def ai_switched_on(session: HubAsyncSession) -> bool:
    """Whether the organization lets text go to the AI server: the `ai` module not switched off
    (work no person asked for, such as an article's embedding, checks it itself)."""
    from hub.permissions import module_switched_on

    return await module_switched_on(session, "ai")


async def _meter(runtime: Runtime, organization_id: uuid.UUID, credits: int) -> None:
    async with runtime.db.session(organization_id) as session:
        await count_credits(session, credits)
        await session.commit()
