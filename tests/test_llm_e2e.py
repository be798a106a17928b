"""The openai handler in a real bot: bundled fake WeCom on 127.0.0.1, fake model in process.

Everything runs under an autojump MockClock, so a model that takes seven minutes takes none.
"""

from __future__ import annotations

import base64
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from wecom_actors.cli import EXIT_CONFIG, main
from wecom_actors.demo import tiny_png
from wecom_actors.demo_llm import llm_demo
from wecom_actors.handlers._llm_config import LLMSettings
from wecom_actors.handlers._llm_view import THINKING
from wecom_actors.handlers.openai import NO_FILES, NO_IMAGES, RESET_DONE, RESET_EMPTY, OpenAIHandler
from wecom_actors.sessions import CONTINUED_NOTE, WINDOW_MARGIN
from wecom_actors.testing import FakeWeCom, open_fake_wecom
from wecom_actors.testing.fake_openai import FakeAnswer, FakeOpenAI

from .fake_bot import bot_config, serve

KEY = "sk-e2e-secret-key-0123456789"


@asynccontextmanager
async def llm_bot(
    answer: FakeAnswer | Callable[[dict[str, Any]], FakeAnswer] | None = None, **changes: Any
) -> AsyncIterator[tuple[FakeWeCom, FakeOpenAI, OpenAIHandler]]:
    model = FakeOpenAI(answer, api_key=KEY)
    base: dict[str, Any] = {"base_url": "http://model.test/v1", "api_key": KEY, "model": "fake-1"}
    handler = OpenAIHandler(LLMSettings(**{**base, **changes}), transport=model.transport)
    async with open_fake_wecom() as fake:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, bot_config(fake, heartbeat_interval=30), handler)
            yield fake, model, handler
            nursery.cancel_scope.cancel()


def frames(fake: FakeWeCom, req_id: str) -> list[str]:
    """The content of every stream frame the bot sent for ``req_id``, in order."""
    out = []
    for f in fake.frames:
        data = f.data or {}
        if f.direction == "in" and f.req_id == req_id and data.get("cmd") == "aibot_respond_msg":
            stream = (data.get("body") or {}).get("stream")
            if stream is not None:
                out.append(stream.get("content", ""))
    return out


def words(n: int, size: int = 10) -> list[str]:
    return [f"w{i:0{size - 2}d} " for i in range(n)]


async def test_tokens_stream_into_one_coalesced_reply(autojump_clock: trio.testing.MockClock) -> None:
    tokens = words(300)  # a token every 10 ms: 3 s in all
    async with llm_bot(FakeAnswer(content=tokens, delay=0.01)) as (fake, model, _):
        cb = await fake.send_text("tell me a story")
        view = await fake.wait_stream_finished(cb.req_id)
        assert view.content == "".join(tokens) and view.rejected_frames == 0
        sent = frames(fake, cb.req_id)
        assert 10 <= len(sent) <= 40  # about one frame per 0.1 s, not one per token
        assert all(b.startswith(a) for a, b in itertools.pairwise(sent))  # only grows
        [body] = model.requests
        assert body["messages"][-1] == {"role": "user", "content": "tell me a story"}
        assert body["messages"][0]["role"] == "system" and body["model"] == "fake-1"


@pytest.mark.parametrize("style", ["reasoning_content", "think_tags"])
async def test_reasoning_is_quoted_while_it_streams_and_dropped_at_the_end(style: str, autojump_clock: trio.testing.MockClock) -> None:
    thoughts = ["First ", "I consider ", "the question. ", "Then the answer."]
    answer = ["The answer ", "is 42."]
    if style == "reasoning_content":
        fake_answer = FakeAnswer(reasoning=thoughts, content=answer, delay=1.0)
    else:
        content = ["<th", "ink>", *thoughts, "</thi", "nk>\n\n", *answer]
        fake_answer = FakeAnswer(content=content, delay=1.0)
    async with llm_bot(fake_answer) as (fake, model, handler):
        cb = await fake.send_text("what is it?")
        view = await fake.wait_stream_finished(cb.req_id)
        assert view.content == "The answer is 42."
        sent = frames(fake, cb.req_id)
        quoted = [f for f in sent if f.startswith(THINKING)]
        assert quoted and any("I consider the question." in f for f in quoted)
        assert all(line.startswith(">") for f in quoted for line in f.splitlines())
        assert "<think>" not in "".join(sent) and "</think>" not in "".join(sent)
        # Memory keeps the answer only.
        cb = await fake.send_text("and then?")
        await fake.wait_stream_finished(cb.req_id)
        assert model.requests[1]["messages"][-2] == {"role": "assistant", "content": "The answer is 42."}
        assert len(handler.memory) == 1


async def test_reasoning_display_off_shows_only_that_it_thinks(autojump_clock: trio.testing.MockClock) -> None:
    async with llm_bot(FakeAnswer(reasoning=["secret ", "plan"], content=["Done."], delay=1.0), show_reasoning=False) as (fake, _, _):
        cb = await fake.send_text("go")
        view = await fake.wait_stream_finished(cb.req_id)
        sent = frames(fake, cb.req_id)
        assert THINKING in sent and not any("plan" in f for f in sent)
        assert view.content == "Done."


async def test_a_long_answer_continues_in_messages(autojump_clock: trio.testing.MockClock) -> None:
    tokens = ["第" + "x" * 97 + "\n" for _ in range(450)]  # 45 000 bytes, 100 a line
    whole = "".join(tokens)
    async with llm_bot(FakeAnswer(content=tokens, delay=0.001)) as (fake, _, _):
        cb = await fake.send_text("a long one please", userid="erin")
        view = await fake.wait_stream_finished(cb.req_id)
        assert len(view.content.encode()) <= 20480 and view.rejected_frames == 0
        await fake.wait_until(lambda: len(fake.conversation("erin")) == 3)
        bubbles = fake.conversation("erin")
        assert [b.kind for b in bubbles] == ["stream", "markdown", "markdown"]
        assert "".join(b.content for b in bubbles) == whole
        assert all(len(b.content.encode()) <= 20480 for b in bubbles)


async def test_an_answer_slower_than_the_window_arrives_whole(autojump_clock: trio.testing.MockClock) -> None:
    tokens = words(40)  # one every 10 s: 400 s, past the 6-minute window
    async with llm_bot(FakeAnswer(content=tokens, delay=10.0), timeout=60, max_duration=900) as (fake, _, _):
        t0 = trio.current_time()
        cb = await fake.send_text("take your time")
        view = await fake.wait_stream_finished(cb.req_id)
        assert trio.current_time() - t0 == pytest.approx(10 + 360 - WINDOW_MARGIN, abs=0.5)
        assert view.content.endswith(CONTINUED_NOTE) and view.rejected_frames == 0
        shown = view.content.removesuffix(CONTINUED_NOTE)
        await fake.wait_until(lambda: len(fake.conversation("alice")) == 2)
        rest = fake.conversation("alice")[1]
        assert rest.kind == "markdown" and shown + rest.content == "".join(tokens)
        assert trio.current_time() - t0 == pytest.approx(400, abs=0.5)


async def test_reasoning_past_the_window_loses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """The window closes while the quote is shown: the answer follows it as a message."""
    thoughts = [f"thought {i}. " for i in range(35)]  # 10 s each: 350 s of reasoning
    async with llm_bot(FakeAnswer(reasoning=thoughts, content=["The ", "answer."], delay=10.0)) as (fake, _, _):
        cb = await fake.send_text("think long")
        view = await fake.wait_stream_finished(cb.req_id)
        assert view.content.startswith(THINKING) and view.content.endswith(CONTINUED_NOTE)
        await fake.wait_until(lambda: len(fake.conversation("alice")) == 2)
        assert fake.conversation("alice")[1].content.strip() == "The answer."


async def test_errors_end_the_stream_with_a_note_and_are_not_remembered(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    answers = iter([
        FakeAnswer(content=["partial ", "answer ", "more"], error_after=2, error="engine overloaded", delay=0.2),
        FakeAnswer(content=["cut ", "off ", "here"], drop_after=2, delay=0.2),
        FakeAnswer(status=503, error="upstream unavailable"),
        FakeAnswer(content=["fine"]),
    ])  # fmt: skip
    caplog.set_level(logging.WARNING, logger="wecom_actors")
    async with llm_bot(lambda body: next(answers)) as (fake, model, _):
        contents = []
        for text in ("one", "two", "three", "four"):
            cb = await fake.send_text(text)
            contents.append((await fake.wait_stream_finished(cb.req_id)).content)
        assert contents[0] == "partial answer \n\n(The model server reported an error mid-answer: engine overloaded)"
        assert contents[1].startswith("cut off \n\n(The connection to the model server")
        assert contents[2] == "(The model server failed (HTTP 503: upstream unavailable). Please try again later.)"
        assert contents[3] == "fine"
        assert len(model.requests[3]["messages"]) == 2  # system + "four": no failed exchange kept
        assert "HTTP 503" in caplog.text and "engine overloaded" in caplog.text
        assert "ERROR" not in {r.levelname for r in caplog.records}  # no handler crash


async def test_the_key_never_reaches_logs_or_users(autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echoes_key = FakeAnswer(status=401, error=f"Incorrect API key provided: {KEY}. Bearer {KEY}")
    answers = iter([echoes_key, FakeAnswer(content=[f"the key is {KEY[:6]}..."])])
    async with llm_bot(lambda body: next(answers)) as (fake, model, _):
        cb = await fake.send_text("hi")
        view = await fake.wait_stream_finished(cb.req_id)
        assert "HTTP 401" in view.content and "OPENAI_API_KEY" in view.content and KEY not in view.content
        cb = await fake.send_text("again")
        await fake.wait_stream_finished(cb.req_id)
        assert model.authorizations == [f"Bearer {KEY}"] * 2  # it was sent, to the model server only
    assert "401" in caplog.text and KEY not in caplog.text
    assert all(KEY not in str(f.data) for f in fake.frames)


async def test_memory_is_per_sender_in_a_group_and_reset_clears_it(autojump_clock: trio.testing.MockClock) -> None:
    def answer(body: dict[str, Any]) -> FakeAnswer:
        return FakeAnswer(content=[f"ok: {body['messages'][-1]['content']}"])

    async def ask(fake: FakeWeCom, text: str, user: str, chat: str | None = "G1") -> str:
        cb = await fake.send_text(text, userid=user, chatid=chat)
        return (await fake.wait_stream_finished(cb.req_id)).content

    async with llm_bot(answer, system_prompt="") as (fake, model, _):
        await ask(fake, "@Bot I am Alice", "alice")
        await ask(fake, "@Bot I am Bob", "bob")
        await ask(fake, "who am I?", "alice", chat=None)  # alice's single chat: its own memory
        await ask(fake, "@Bot who am I?", "alice")
        assert [m["content"] for m in model.requests[-1]["messages"]] == [
            "I am Alice", "ok: I am Alice", "who am I?",
        ]  # fmt: skip
        assert [m["content"] for m in model.requests[2]["messages"]] == ["who am I?"]
        assert await ask(fake, "@Bot /reset", "alice") == RESET_DONE
        assert await ask(fake, "@Bot /reset", "alice") == RESET_EMPTY
        await ask(fake, "@Bot who am I?", "alice")
        assert [m["content"] for m in model.requests[-1]["messages"]] == ["who am I?"]
        await ask(fake, "@Bot and me?", "bob")  # bob's memory is untouched
        assert [m["content"] for m in model.requests[-1]["messages"]] == ["I am Bob", "ok: I am Bob", "and me?"]
        assert len(model.requests) == 6  # /reset never reached the model


async def test_memory_is_bounded_in_turns(autojump_clock: trio.testing.MockClock) -> None:
    async with llm_bot(FakeAnswer(content=["ok"]), history_turns=2, system_prompt="") as (fake, model, _):
        for i in range(5):
            cb = await fake.send_text(f"m{i}")
            await fake.wait_stream_finished(cb.req_id)
        assert [m["content"] for m in model.requests[-1]["messages"]] == ["m2", "ok", "m3", "ok", "m4"]


async def test_images_go_to_multimodal_models_as_data_urls(autojump_clock: trio.testing.MockClock) -> None:
    png = tiny_png()
    async with llm_bot(FakeAnswer(content=["a gradient"]), multimodal=True, system_prompt="") as (fake, model, _):
        cb = await fake.send_image(png)
        assert (await fake.wait_stream_finished(cb.req_id)).content == "a gradient"
        [part] = model.requests[0]["messages"][-1]["content"]
        assert part == {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}
        cb = await fake.send_mixed(["what is this?", png, png])
        await fake.wait_stream_finished(cb.req_id)
        parts = model.requests[1]["messages"][-1]["content"]
        assert [p["type"] for p in parts] == ["text", "image_url", "image_url"] and parts[0]["text"] == "what is this?"
        history = model.requests[1]["messages"][:-1]
        assert history[0] == {"role": "user", "content": "[image]"}  # remembered without the data
        cb = await fake.send_file(b"%PDF-1.4", filename="a.pdf")
        assert (await fake.wait_stream_finished(cb.req_id)).content == NO_FILES
        assert len(model.requests) == 2


async def test_images_and_a_text_only_model(autojump_clock: trio.testing.MockClock) -> None:
    async with llm_bot(FakeAnswer(content=["I cannot see it"]), multimodal=False) as (fake, model, _):
        cb = await fake.send_image(tiny_png())
        assert (await fake.wait_stream_finished(cb.req_id)).content == NO_IMAGES
        assert model.requests == []
        cb = await fake.send_mixed(["look", tiny_png()])
        await fake.wait_stream_finished(cb.req_id)
        assert model.requests[0]["messages"][-1]["content"] == "look\n[an image was attached, but you cannot see images]"


async def test_welcome_and_events(autojump_clock: trio.testing.MockClock) -> None:
    async with llm_bot(FakeAnswer(content=["x"]), welcome="Hi from the model bot") as (fake, model, _):
        await fake.send_enter_chat(userid="carol")
        await fake.wait_until(lambda: any(b.kind == "text" for b in fake.conversation("carol")))
        assert [b.content for b in fake.conversation("carol")] == ["Hi from the model bot"]
        assert model.requests == []


async def test_the_bundled_fake_model_answers_and_says_so(autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wecom_actors")
    handler = OpenAIHandler(LLMSettings.load(environ={}))
    assert handler.uses_fake and "bundled fake model" in caplog.text
    async with open_fake_wecom() as fake:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, bot_config(fake), handler)
            cb = await fake.send_text("please think about tea")
            view = await fake.wait_stream_finished(cb.req_id)
            assert view.content.startswith("(The bundled fake model, not a real one.)")
            assert "please think about tea" in view.content
            assert any(f.startswith(THINKING) for f in frames(fake, cb.req_id))
            nursery.cancel_scope.cancel()


async def test_the_demo_with_the_fake_model(autojump_clock: trio.testing.MockClock) -> None:
    lines: list[str] = []
    assert await llm_demo(print_fn=lines.append, environ={}) == 0
    text = "\n".join(lines)
    assert "BUNDLED FAKE MODEL" in text and "demo FAILED" not in text
    assert "while thinking" in text and RESET_DONE in text


def test_the_demo_needs_long_connection_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--handler", "openai", "--mode", "webhook"]) == EXIT_CONFIG
    assert "long-connection" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("answer", "changes", "expected"),
    [
        (FakeAnswer(content=["cut ", "short"], finish_reason="length"), {}, "cut short\n\n(The answer was cut at the model's token limit.)"),
        (FakeAnswer(content=[]), {}, "(The model returned an empty answer.)"),
        (FakeAnswer(reasoning=["only ", "thoughts"], delay=1.0), {}, "(The model returned an empty answer.)"),
        (FakeAnswer(content=["<think>hidden</think>"]), {}, "(The model returned an empty answer.)"),
        (FakeAnswer(content=["x" * 600] * 3), {"max_answer_bytes": 1000}, "x" * 1000 + "\n\n(The answer was cut at 1000 bytes.)"),
        (FakeAnswer(reasoning=["hmm"], content=["late"], first_delay=30, delay=1), {"timeout": 20},
         "(The model server did not answer within 20 s.)"),
    ],
)
async def test_notes_at_the_end(answer: FakeAnswer, changes: dict[str, Any], expected: str, autojump_clock: trio.testing.MockClock) -> None:
    async with llm_bot(answer, **changes) as (fake, _, handler):
        cb = await fake.send_text("hi")
        assert (await fake.wait_stream_finished(cb.req_id)).content == expected
        await trio.sleep(1)  # virtual time: the handler remembers once the final frame is acked
        assert len(handler.memory) == (1 if expected.startswith(("cut", "xxx")) else 0)
