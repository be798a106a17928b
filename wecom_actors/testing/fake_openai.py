"""A fake OpenAI-compatible chat completions server, in process (an ``httpx.MockTransport``).

It needs no network and runs in trio's virtual time, so it serves both the tests and the
``openai`` handler when no model server is configured::

    fake = FakeOpenAI(FakeAnswer(content=["Hello", " there"], delay=0.5))
    handler = OpenAIHandler(LLMSettings(base_url="http://model.test/v1"), transport=fake.transport)

:meth:`FakeOpenAI.asgi` serves the same over real HTTP.

What it checks like a real server: ``POST .../chat/completions`` only, a JSON body with a model
name and a list of messages (roles system/user/assistant, text or content parts), the bearer key
when it was given one. What it answers is a :class:`FakeAnswer`: fixed, or chosen per request by
a function of the request body. Every request body is kept in :attr:`FakeOpenAI.requests`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

__all__ = ["FakeAnswer", "FakeOpenAI", "default_answer"]

_ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class FakeAnswer:
    """What the fake model sends for one request."""

    #: Content deltas, in order (one SSE event each).
    content: Sequence[str] = ()
    #: ``reasoning_content`` deltas, sent before the content.
    reasoning: Sequence[str] = ()
    #: Seconds before each event, and before the response headers.
    delay: float = 0.0
    first_delay: float = 0.0
    #: An HTTP error status (>= 400) answers with an error body whose message is ``error``.
    status: int = 200
    error: str = "the fake model failed"
    #: After this many content deltas: send an ``{"error": ...}`` event, or drop the connection.
    error_after: int | None = None
    drop_after: int | None = None
    finish_reason: str | None = "stop"
    #: Send the final ``data: [DONE]``.
    done: bool = True
    #: Re-cut the event stream into pieces of this many bytes (events split anywhere).
    chunk_bytes: int | None = None


@dataclass
class FakeOpenAI:
    """The fake server. ``answer`` is a :class:`FakeAnswer` or a function of the request body."""

    answer: FakeAnswer | Callable[[dict[str, Any]], FakeAnswer] | None = None
    #: When set, requests must carry ``Authorization: Bearer <api_key>``.
    api_key: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: The ``Authorization`` header of each request ('' when absent).
    authorizations: list[str] = field(default_factory=list)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The same server as an ASGI app, to serve over real HTTP (e.g. with hypercorn).

        A dropped connection (``drop_after``) aborts the response mid-body."""
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        request = httpx.Request(
            scope["method"], "http://fake-openai" + scope["path"], headers=scope["headers"], content=body
        )
        response = await self._handle(request)
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-length"]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.ReadError:
            raise ConnectionAbortedError("the fake model drops the connection") from None
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        await trio.lowlevel.checkpoint()
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return _error(404, f"no route {request.method} {request.url.path}", "not_found")
        auth = request.headers.get("authorization", "")
        self.authorizations.append(auth)
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            shown = auth.removeprefix("Bearer ")
            shown = f"{shown[:3]}***{shown[-2:]}" if len(shown) > 6 else "***"
            return _error(401, f"Incorrect API key provided: {shown}.", "invalid_api_key")
        try:
            body = json.loads(request.content)
        except ValueError:
            return _error(400, "the body is not JSON", "invalid_request_error")
        problem = _check_body(body)
        if problem:
            return _error(400, problem, "invalid_request_error")
        self.requests.append(body)
        answer = self.answer(body) if callable(self.answer) else self.answer or default_answer(body)
        if answer.first_delay:
            await trio.sleep(answer.first_delay)
        if answer.status >= 400:
            return _error(answer.status, answer.error, "fake_error")
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(answer.content)}
            if answer.reasoning:
                message["reasoning_content"] = "".join(answer.reasoning)
            choice = {"index": 0, "message": message, "finish_reason": answer.finish_reason}
            return httpx.Response(200, json={"object": "chat.completion", "model": body["model"], "choices": [choice]})
        return httpx.Response(
            200, headers={"content-type": "text/event-stream; charset=utf-8"}, content=_rechunk(_events(answer, body["model"]), answer.chunk_bytes)
        )


def _error(status: int, message: str, kind: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": kind, "code": status}})


def _check_body(body: object) -> str:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' must be a non-empty string"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            return "each message needs a role: system, user or assistant"
        content = m.get("content")
        if isinstance(content, list):
            if not all(isinstance(p, dict) and p.get("type") in ("text", "image_url") for p in content):
                return "content parts must be of type text or image_url"
        elif not isinstance(content, str):
            return "'content' must be a string or a list of parts"
    return ""


def _event(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


async def _events(answer: FakeAnswer, model: str) -> AsyncIterator[bytes]:
    yield b": the fake model is thinking\n\n"  # an SSE comment, as some servers send
    yield _event(model, {"role": "assistant", "content": ""})
    for text in answer.reasoning:
        await trio.sleep(answer.delay)
        yield _event(model, {"reasoning_content": text})
    for i, text in enumerate(answer.content):
        if i == answer.drop_after:
            raise httpx.ReadError("the fake model dropped the connection")
        if i == answer.error_after:
            error = {"error": {"message": answer.error, "type": "server_error"}}
            yield b"data: " + json.dumps(error).encode() + b"\n\n"
            return
        await trio.sleep(answer.delay)
        yield _event(model, {"content": text})
    if answer.drop_after is not None and answer.drop_after >= len(answer.content):
        raise httpx.ReadError("the fake model dropped the connection")
    if answer.finish_reason is not None:
        yield _event(model, {}, answer.finish_reason)
    if answer.done:
        yield b"data: [DONE]\n\n"


async def _rechunk(events: AsyncIterator[bytes], size: int | None) -> AsyncIterator[bytes]:
    async for data in events:
        if not size:
            yield data
            continue
        for i in range(0, len(data), size):
            yield data[i : i + size]


def _user_text(message: dict[str, Any]) -> tuple[str, int]:
    content = message.get("content")
    if isinstance(content, str):
        return content, 0
    texts = [p.get("text", "") for p in content or [] if p.get("type") == "text"]
    images = sum(1 for p in content or [] if p.get("type") == "image_url")
    return "\n".join(texts), images


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


def default_answer(body: dict[str, Any]) -> FakeAnswer:
    """What the bundled fake model says: that it is a fake, what it was sent, what it remembers;
    it pretends to reason first when the message mentions "think"."""
    users = [m for m in body["messages"] if m.get("role") == "user"]
    text, images = _user_text(users[-1]) if users else ("", 0)
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 200 else shown[:199] + "…"
    answer = f"(The bundled fake model, not a real one.) You said: “{shown}”."
    if images:
        answer += f" I got {images} image(s) but cannot look at them."
    if len(users) > 1:
        answer += f" I remember {len(users) - 1} earlier message(s)."
    reasoning: list[str] = []
    if "think" in text.lower():
        reasoning = _words("The user wants me to think. I am a fake model, so I only pretend to: first this, then that, and so the answer is clear.")
    return FakeAnswer(content=_words(answer), reasoning=reasoning, delay=0.05)
