"""One streamed completion against the fake OpenAI-compatible server (in process, virtual time)."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio.testing

from wecom_actors.handlers._llm_client import LLMError, stream_completion, summarise
from wecom_actors.handlers._llm_config import LLMSettings
from wecom_actors.testing.fake_openai import FakeAnswer, FakeOpenAI

KEY = "sk-client-test-9f8e7d6c5b4a"
MESSAGES = [{"role": "user", "content": "hi"}]


def settings(**changes: object) -> LLMSettings:
    base: dict[str, object] = {"base_url": "http://model.test/v1", "api_key": KEY, "model": "m"}
    return LLMSettings(**{**base, **changes})  # type: ignore[arg-type]


async def complete(fake: FakeOpenAI, **changes: object) -> tuple[list[tuple[str, str, float]], str | None]:
    parts: list[tuple[str, str, float]] = []

    async def on_part(kind: str, text: str) -> None:
        parts.append((kind, text, trio.current_time()))

    async with httpx.AsyncClient(transport=fake.transport) as client:
        finish = await stream_completion(client, settings(**changes), MESSAGES, on_part)
    return parts, finish


async def test_deltas_arrive_as_they_are_sent(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeOpenAI(FakeAnswer(reasoning=["let me ", "see"], content=["Hel", "lo ", "你好"], delay=1.0), api_key=KEY)
    t0 = trio.current_time()
    parts, finish = await complete(fake, temperature=0.3, max_tokens=64)
    assert finish == "stop"
    assert [(k, t) for k, t, _ in parts] == [
        ("reasoning", "let me "), ("reasoning", "see"), ("content", "Hel"), ("content", "lo "), ("content", "你好"),
    ]  # fmt: skip
    assert [round(at - t0, 3) for _, _, at in parts] == [1.0, 2.0, 3.0, 4.0, 5.0]
    [body] = fake.requests
    assert body == {"model": "m", "messages": MESSAGES, "stream": True, "temperature": 0.3, "max_tokens": 64}
    assert fake.authorizations == [f"Bearer {KEY}"]


async def test_events_cut_anywhere_are_parsed_the_same() -> None:
    for size in (1, 3, 7, 50):
        fake = FakeOpenAI(FakeAnswer(content=["a", "b\nc", " é€😀"], chunk_bytes=size))
        parts, finish = await complete(fake)
        assert "".join(t for _, t, _ in parts) == "ab\nc é€😀" and finish == "stop", size


async def test_no_key_no_authorization_header() -> None:
    fake = FakeOpenAI(FakeAnswer(content=["ok"]))
    parts, _ = await complete(fake, api_key="")
    assert fake.authorizations == [""] and parts[0][1] == "ok"


async def test_a_server_that_ignores_stream_true_is_read_whole() -> None:
    class NoStream(FakeOpenAI):
        async def _handle(self, request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content)
            request = httpx.Request("POST", request.url, json={**body, "stream": False}, headers=request.headers)
            return await super()._handle(request)

    fake = NoStream(FakeAnswer(content=["whole ", "answer"], reasoning=["hmm"], finish_reason="length"))
    parts, finish = await complete(fake)
    assert [(k, t) for k, t, _ in parts] == [("reasoning", "hmm"), ("content", "whole answer")]
    assert finish == "length"


@pytest.mark.parametrize(
    ("status", "message", "in_note"),
    [
        (401, f"Incorrect API key provided: {KEY}.", "OPENAI_API_KEY"),
        (404, "The model `m` does not exist", "OPENAI_MODEL"),
        (429, "Rate limit reached", "busy or out of quota"),
        (500, "internal\x00 error\n\nwith   lines", "failed (HTTP 500: internal error with lines)"),
        (400, "x" * 5000, "rejected the request (HTTP 400: xxx"),
    ],
)
async def test_http_errors_become_short_notes_without_the_key(status: int, message: str, in_note: str) -> None:
    fake = FakeOpenAI(FakeAnswer(status=status, error=message), api_key=KEY)
    with pytest.raises(LLMError) as info:
        await complete(fake)
    error = info.value
    assert error.status == status and in_note in error.note
    assert f"HTTP {status}" in error.note and f"HTTP {status}" in str(error)
    for text in (error.note, str(error)):
        assert KEY not in text and "\x00" not in text and "\n" not in text and len(text) < 400


async def test_a_wrong_key_is_refused_and_not_echoed() -> None:
    fake = FakeOpenAI(FakeAnswer(content=["never"]), api_key="sk-the-right-one-123456")
    with pytest.raises(LLMError) as info:
        await complete(fake)
    assert info.value.status == 401 and KEY not in str(info.value) and "never" not in info.value.note


async def test_other_error_bodies() -> None:
    def ollama(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": "model 'qwen9' not found, try pulling it first"})

    def plain(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    def moved(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"location": "https://elsewhere.test/v1/chat/completions"})

    for handler, expected in (
        (ollama, "model 'qwen9' not found"),
        (plain, "<html>Bad Gateway</html>"),
        (moved, "redirected the request (HTTP 301). Check OPENAI_BASE_URL"),
    ):
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            with pytest.raises(LLMError) as info:
                await stream_completion(client, settings(), MESSAGES, _ignore)
        assert expected in info.value.note


async def _ignore(kind: str, text: str) -> None:
    pass


async def test_an_error_event_mid_stream(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeOpenAI(FakeAnswer(content=["one ", "two ", "three"], error_after=2, error="overloaded", delay=0.1))
    parts: list[str] = []

    async def on_part(kind: str, text: str) -> None:
        parts.append(text)

    async with httpx.AsyncClient(transport=fake.transport) as client:
        with pytest.raises(LLMError) as info:
            await stream_completion(client, settings(), MESSAGES, on_part)
    assert parts == ["one ", "two "] and "overloaded" in info.value.note and info.value.status is None


@pytest.mark.parametrize(
    "answer",
    [
        FakeAnswer(content=["one ", "two ", "three"], drop_after=2),  # connection reset
        FakeAnswer(content=["one ", "two "], finish_reason=None, done=False),  # ends early
    ],
)
async def test_a_dropped_stream(answer: FakeAnswer) -> None:
    with pytest.raises(LLMError) as info:
        await complete(FakeOpenAI(answer))
    assert "dropped" in info.value.note or "failed or dropped" in info.value.note


async def test_finish_without_done_is_complete() -> None:
    parts, finish = await complete(FakeOpenAI(FakeAnswer(content=["ok"], done=False)))
    assert finish == "stop" and parts[0][1] == "ok"


async def test_no_headers_in_time(autojump_clock: trio.testing.MockClock) -> None:
    t0 = trio.current_time()
    with pytest.raises(LLMError, match="did not answer within 20 s"):
        await complete(FakeOpenAI(FakeAnswer(content=["late"], first_delay=25)), timeout=20)
    assert trio.current_time() - t0 == pytest.approx(20)


async def test_a_stalled_stream_times_out(autojump_clock: trio.testing.MockClock) -> None:
    t0 = trio.current_time()
    with pytest.raises(LLMError, match="stopped sending for 30 s"):
        await complete(FakeOpenAI(FakeAnswer(content=["a", "b"], delay=31)), timeout=30)
    assert trio.current_time() - t0 == pytest.approx(30)


async def test_the_whole_answer_is_bounded_in_time(autojump_clock: trio.testing.MockClock) -> None:
    t0 = trio.current_time()
    with pytest.raises(LLMError, match="longer than 100 s"):
        await complete(FakeOpenAI(FakeAnswer(content=["x"] * 1000, delay=5)), timeout=10, max_duration=100)
    assert trio.current_time() - t0 == pytest.approx(100)


async def test_the_answer_is_bounded_in_bytes() -> None:
    parts, finish = await complete(FakeOpenAI(FakeAnswer(content=["€" * 100] * 100)), max_answer_bytes=1000)
    text = "".join(t for _, t, _ in parts)
    assert finish == "max_answer_bytes" and text == "€" * 333


async def test_malformed_events() -> None:
    def junk(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b'data: {"choices": [1]}\n\n')

    def wrong_type(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, content=b"<p>hi</p>")

    for handler, expected in ((junk, "malformed"), (wrong_type, "did not send a stream")):
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            with pytest.raises(LLMError, match=expected):
                await stream_completion(client, settings(), MESSAGES, _ignore)


async def test_a_server_that_cannot_be_reached() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(LLMError, match="failed or dropped"):
            await stream_completion(client, settings(), MESSAGES, _ignore)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"bad key {KEY}", "bad key ***"),
        ("Authorization: Bearer abcdefgh1234", "Authorization: Bearer ***"),
        ("key sk-proj-AbC***xyz rejected", "key sk-*** rejected"),
        ("tab\there\x1b[31m", "tab here [31m"),
        ("", ""),
    ],
)
def test_summarise(text: str, expected: str) -> None:
    assert summarise(text, KEY) == expected
