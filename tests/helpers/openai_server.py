"""A local server that speaks the OpenAI protocol the hub uses: `POST /v1/chat/completions` (with
and without `stream=True`, as server-sent events, with the usage chunk when asked) and
`POST /v1/embeddings`. Its answers are deterministic from the prompt, so a test can check both
what the hub sent (every request is kept) and what it did with the answer.

What it answers: the reply is `ANSWER_PREFIX` followed by the last user message's words, then
the system prompt's language tag; a test can make it misbehave by putting a word in the last user
message: `#429` (rate limited, with `Retry-After`), `#500` (a server error), `#cut` (the stream
stops half way), `#hang` (no answer at all), `#slow` (a pause between chunks)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ANSWER_PREFIX = "Suggested:"
DIMENSIONS = 64


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def embedding(text: str) -> list[float]:
    """A bag of words hashed into a few dimensions, normalised: texts that share words are close,
    in any script."""
    vector = [0.0] * DIMENSIONS
    for word in words_of(text):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


@dataclass
class OpenAIServer:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the Authorization each request carried
    answer: str | None = None  # a fixed answer instead of the echo, when a test wants one
    hung: list[asyncio.Event] = field(default_factory=list)
    # When each streamed answer's first and last pieces were written (time.perf_counter), for
    # the relay benchmark.
    written: list[tuple[float, float]] = field(default_factory=list)

    def chats(self) -> list[dict[str, Any]]:
        return [request for request in self.requests if "messages" in request]

    def reply_for(self, body: dict[str, Any]) -> str:
        if self.answer is not None:
            return self.answer
        messages = body.get("messages") or []
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        system = " ".join(m.get("content") or "" for m in messages if m.get("role") == "system")
        language = re.search(r"\[language:(\w+)\]", system)
        tag = f" [{language.group(1)}]" if language else ""
        return f"{ANSWER_PREFIX} {last_user.get('content') or ''}{tag}".strip()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.keys.append(request.headers.get("Authorization", ""))
        messages = body.get("messages") or []
        last = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        if "#429" in last:
            return web.json_response(
                {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}},
                status=429,
                headers={"Retry-After": "7"},
            )
        if "#500" in last:
            return web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)
        if "#hang" in last:
            released = asyncio.Event()
            self.hung.append(released)
            await released.wait()
        reply = self.reply_for(body)
        prompt = sum(tokens(m.get("content") or "") for m in messages)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": tokens(reply),
            "total_tokens": prompt + tokens(reply),
        }
        model = body.get("model", "local")
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "chatcmpl-local",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        pieces = re.findall(r"\S+\s*", reply)
        first = 0.0
        for number, piece in enumerate(pieces):
            if "#cut" in last and number == len(pieces) // 2:
                request.transport.close()  # type: ignore[union-attr] - the connection dies mid-stream
                return response
            chunk = {
                "id": "chatcmpl-local",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            first = first or time.perf_counter()
            if "#slow" in last:
                await asyncio.sleep(0.2)
        done = {
            "id": "chatcmpl-local",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        await response.write(f"data: {json.dumps(done)}\n\n".encode())
        self.written.append((first, time.perf_counter()))
        if (body.get("stream_options") or {}).get("include_usage"):
            tail = {**done, "choices": [], "usage": usage}
            await response.write(f"data: {json.dumps(tail)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.keys.append(request.headers.get("Authorization", ""))
        given = body.get("input")
        texts = [given] if isinstance(given, str) else list(given or [])
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": index, "embedding": embedding(text)}
                    for index, text in enumerate(texts)
                ],
                "model": body.get("model", "local-embed"),
                "usage": {
                    "prompt_tokens": sum(tokens(t) for t in texts),
                    "total_tokens": sum(tokens(t) for t in texts),
                },
            }
        )

    def release(self) -> None:
        for event in self.hung:
            event.set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        return app


@contextlib.asynccontextmanager
async def openai_server() -> AsyncIterator[OpenAIServer]:
    """The server on a free local port, its address ending in `/v1` as the library expects."""
    from tests.conftest import serve_web_app

    server = OpenAIServer()
    runner, address = await serve_web_app(server.app(), cancel_on_disconnect=True)
    server.url = f"{address}/v1"
    try:
        yield server
    finally:
        server.release()
        await runner.cleanup()


def ai_settings(server: OpenAIServer) -> dict[str, str]:
    """The environment a hub needs to use this server for AI."""
    return {
        "HUB_AI_BASE_URL": server.url,
        "HUB_AI_API_KEY": "sk-local-test",
        "HUB_AI_MODEL": "local-chat",
        "HUB_AI_EMBEDDINGS_MODEL": "local-embed",
        "HUB_AI_TIMEOUT_SECONDS": "3",
    }
