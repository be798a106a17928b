"""One streamed chat completion from an OpenAI-compatible server (httpx + httpx-sse).

:func:`stream_completion` POSTs ``{base_url}/chat/completions`` with ``"stream": true`` and hands
every reasoning and content delta to a callback as it arrives. Every wait is bounded in trio time
(so tests run in virtual time): the response headers and each event within ``timeout`` seconds,
the whole answer within ``max_duration``. Every failure becomes one :class:`LLMError` with a short
note for the user and a log-safe summary (status code, the server's message cleaned, cut and with
the API key masked).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
import msgspec
import trio
from httpx_sse import EventSource, SSEError

from .._logging import mask_secrets
from ..render import truncate_utf8
from ._llm_config import LLMSettings

__all__ = ["LLMError", "OnPart", "request_body", "stream_completion", "summarise"]

#: How much of an error response's body is read, and how much of its message is shown.
MAX_ERROR_BODY = 16 * 1024
MAX_SUMMARY_CHARS = 200

OnPart = Callable[[Literal["reasoning", "content"], str], Awaitable[None]]


class LLMError(Exception):
    """The model server could not give an answer. ``note`` is for the user, ``status`` the
    HTTP status when there was one; ``str()`` is safe to log."""

    def __init__(self, note: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(f"{note} [{detail}]" if detail else note)
        self.note = note
        self.status = status


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None  # DeepSeek, vLLM, llama.cpp
    reasoning: str | None = None  # Ollama, OpenRouter


class _Choice(msgspec.Struct):
    delta: _Delta = msgspec.field(default_factory=_Delta)
    finish_reason: str | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    error: Any = None


class _Message(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None


class _WholeChoice(msgspec.Struct):
    message: _Message = msgspec.field(default_factory=_Message)
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    choices: list[_WholeChoice] = []


_chunk_decoder = msgspec.json.Decoder(_Chunk)
_completion_decoder = msgspec.json.Decoder(_Completion)
_KEY_LIKE = re.compile(r"\b(sk-|Bearer\s+)[A-Za-z0-9_\-*.]{4,}")


def summarise(text: str, api_key: str = "") -> str:
    """A peer's message made safe to show and log: keys masked, printable, one line, short."""
    if api_key:
        text = text.replace(api_key, "***")
    text = _KEY_LIKE.sub(lambda m: m.group(1) + "***", mask_secrets(text))
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= MAX_SUMMARY_CHARS else text[: MAX_SUMMARY_CHARS - 1] + "…"


def _error_message(body: bytes) -> str:
    """The message of an error body: OpenAI's ``{"error": {"message"}}``, Ollama's
    ``{"error": "..."}``, vLLM's ``{"message"}``, FastAPI's ``{"detail"}``, else the text."""
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body.decode("utf-8", errors="replace")
    if isinstance(doc, dict):
        error = doc.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, str):
            return message
        for value in (error, doc.get("message"), doc.get("detail")):
            if isinstance(value, str):
                return value
    return body.decode("utf-8", errors="replace")


def _status_note(status: int, message: str) -> str:
    why = f": {message}" if message else ""
    if status < 400:
        return f"The model server redirected the request (HTTP {status}). Check OPENAI_BASE_URL."
    if status in (401, 403):
        return f"The model server refused the request (HTTP {status}{why}). Check OPENAI_API_KEY."
    if status == 404:
        return f"The model server has no such model or endpoint (HTTP 404{why}). Check OPENAI_MODEL and OPENAI_BASE_URL."
    if status == 429:
        return f"The model server is busy or out of quota (HTTP 429{why}). Please try again later."
    if status >= 500:
        return f"The model server failed (HTTP {status}{why}). Please try again later."
    return f"The model server rejected the request (HTTP {status}{why})."


def request_body(settings: LLMSettings, messages: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": settings.model, "messages": messages, "stream": True}
    if settings.temperature is not None:
        body["temperature"] = settings.temperature
    if settings.max_tokens is not None:
        body["max_tokens"] = settings.max_tokens
    return body


async def stream_completion(
    client: httpx.AsyncClient, settings: LLMSettings, messages: list[dict[str, Any]], on_part: OnPart
) -> str | None:
    """Stream one answer into ``on_part``; return the finish reason (``None`` if not given).

    Raises :class:`LLMError`; cancellation propagates.
    """
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    headers.update({"Accept": "text/event-stream", "Cache-Control": "no-store"})
    body = request_body(settings, messages)
    timeout = settings.timeout
    with trio.move_on_after(settings.max_duration) as whole:
        try:
            async with contextlib.AsyncExitStack() as stack:
                with trio.move_on_after(timeout) as first:
                    response = await stack.enter_async_context(
                        client.stream("POST", settings.endpoint, json=body, headers=headers)
                    )
                if first.cancelled_caught:
                    raise LLMError(f"The model server did not answer within {timeout:g} s.", detail="no response headers in time")
                if response.status_code >= 300:  # redirects are not followed: a wrong URL
                    raise await _http_error(response, settings)
                kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
                if kind == "application/json":
                    return await _whole_answer(response, settings, on_part)
                return await _events(EventSource(response), settings, on_part)
        except httpx.TimeoutException as exc:
            raise LLMError(f"The model server did not answer within {timeout:g} s.", detail=type(exc).__name__) from None
        except SSEError:  # an httpx.RequestError too: first
            raise LLMError(
                "The model server did not send a stream (wrong content type).",
                detail=f"content type {summarise(response.headers.get('content-type', ''))!r}",
            ) from None
        except httpx.RequestError as exc:  # connection refused or dropped, bad encoding...
            raise LLMError(
                "The connection to the model server failed or dropped before the answer was complete.",
                detail=f"{type(exc).__name__}: {summarise(str(exc), settings.api_key)}",
            ) from None
    assert whole.cancelled_caught
    raise LLMError(f"The answer took longer than {settings.max_duration:g} s and was stopped.", detail="max_duration")


async def _http_error(response: httpx.Response, settings: LLMSettings) -> LLMError:
    data = b""
    with trio.move_on_after(settings.timeout):
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) >= MAX_ERROR_BODY:
                break
    message = summarise(_error_message(data[:MAX_ERROR_BODY]), settings.api_key)
    return LLMError(_status_note(response.status_code, message), status=response.status_code)


async def _whole_answer(response: httpx.Response, settings: LLMSettings, on_part: OnPart) -> str | None:
    """A server that ignored ``"stream": true`` and sent one JSON completion."""
    limit = settings.max_answer_bytes * 8 + MAX_ERROR_BODY
    data = b""
    with trio.move_on_after(settings.timeout) as scope:
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > limit:
                raise LLMError("The model server sent an answer that is too large.", detail=f"over {limit} bytes")
    if scope.cancelled_caught:
        raise LLMError(f"The model server did not answer within {settings.timeout:g} s.", detail="slow body")
    try:
        completion = _completion_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise LLMError("The model server sent a malformed answer.", detail=f"JSON body: {exc}") from None
    if not completion.choices:
        raise LLMError("The model server sent an empty answer.", detail="no choices")
    choice = completion.choices[0]
    if choice.message.reasoning_content:
        await on_part("reasoning", choice.message.reasoning_content)
    if choice.message.content:
        await on_part("content", choice.message.content)
    return choice.finish_reason


async def _events(source: EventSource, settings: LLMSettings, on_part: OnPart) -> str | None:
    finish: str | None = None
    answered = 0
    async with contextlib.aclosing(source.aiter_sse()) as events:
        while True:
            with trio.move_on_after(settings.timeout) as idle:
                try:
                    event = await events.__anext__()
                except StopAsyncIteration:
                    break
            if idle.cancelled_caught:
                raise LLMError(
                    f"The model server stopped sending for {settings.timeout:g} s; the answer is incomplete.",
                    detail="idle stream",
                )
            if event.data.strip() == "[DONE]":
                return finish
            if not event.data.strip() or event.event not in ("message", "error"):
                continue  # keep-alives, comments and events of other kinds
            try:
                chunk = _chunk_decoder.decode(event.data)
            except msgspec.DecodeError as exc:
                raise LLMError("The model server sent a malformed answer.", detail=f"event data: {exc}") from None
            if chunk.error is not None or event.event == "error":
                message = summarise(_error_message(event.data.encode()), settings.api_key)
                raise LLMError(f"The model server reported an error mid-answer: {message}", detail=f"stream error: {message}")
            for choice in chunk.choices[:1]:
                delta = choice.delta
                reasoning = delta.reasoning_content or delta.reasoning
                if reasoning:
                    await on_part("reasoning", reasoning)
                if delta.content:
                    size = len(delta.content.encode("utf-8"))
                    if answered + size > settings.max_answer_bytes:
                        rest = truncate_utf8(delta.content, settings.max_answer_bytes - answered)
                        if rest:
                            await on_part("content", rest)
                        return "max_answer_bytes"
                    answered += size
                    await on_part("content", delta.content)
                finish = choice.finish_reason or finish
    if finish is None:
        raise LLMError(
            "The connection to the model server dropped before the answer was complete.",
            detail="stream ended without [DONE] or a finish reason",
        )
    return finish
