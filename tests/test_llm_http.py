"""The openai handler over real HTTP: the fake model as an ASGI app on hypercorn, 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from hypercorn.trio import serve as serve_asgi

from wecom_actors.handlers._llm_config import LLMSettings
from wecom_actors.handlers.openai import OpenAIHandler
from wecom_actors.testing import open_fake_wecom
from wecom_actors.testing.fake_openai import FakeAnswer, FakeOpenAI

from .fake_bot import bot_config, serve

KEY = "sk-http-test-abcdef123456"


@asynccontextmanager
async def model_server(model: FakeOpenAI) -> AsyncIterator[str]:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("tests.fake_openai_http")  # not stderr
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve_asgi, model.asgi, config, mode="asgi"))
        yield binds[0] + "/v1"
        nursery.cancel_scope.cancel()


async def test_streaming_errors_and_drops_over_real_http(autojump_clock: trio.testing.MockClock) -> None:
    answers = iter([
        FakeAnswer(reasoning=["weighing ", "options"], content=["Real ", "HTTP ", "works."], delay=0.5),
        FakeAnswer(content=["half ", "of it"], drop_after=1, delay=0.5),
        FakeAnswer(content=["slow"], delay=45),
        FakeAnswer(status=429, error="slow down"),
    ])  # fmt: skip
    model = FakeOpenAI(lambda body: next(answers), api_key=KEY)
    async with model_server(model) as base_url, open_fake_wecom() as fake:
        handler = OpenAIHandler(LLMSettings(base_url=base_url, api_key=KEY, timeout=30))
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, bot_config(fake, heartbeat_interval=30), handler)
            contents = []
            for text in ("one", "two", "three", "four"):
                cb = await fake.send_text(text)
                contents.append((await fake.wait_stream_finished(cb.req_id)).content)
            nursery.cancel_scope.cancel()
    assert contents[0] == "Real HTTP works."
    assert contents[1].startswith("half \n\n(The connection to the model server failed or dropped")
    assert contents[2] == "(The model server stopped sending for 30 s; the answer is incomplete.)"
    assert contents[3].startswith("(The model server is busy or out of quota (HTTP 429: slow down).")
    assert model.authorizations == [f"Bearer {KEY}"] * 4


async def test_a_server_that_is_not_there(autojump_clock: trio.testing.MockClock) -> None:
    async with model_server(FakeOpenAI()) as base_url:
        pass  # closed again: nothing listens on that port now
    handler = OpenAIHandler(LLMSettings(base_url=base_url, timeout=5))
    async with open_fake_wecom() as fake:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, bot_config(fake, heartbeat_interval=30), handler)
            cb = await fake.send_text("anyone?")
            view = await fake.wait_stream_finished(cb.req_id)
            nursery.cancel_scope.cancel()
    assert view.content == "(The connection to the model server failed or dropped before the answer was complete.)"


@pytest.mark.parametrize("size", [1, 5])
async def test_events_cut_into_tiny_pieces_over_http(size: int, autojump_clock: trio.testing.MockClock) -> None:
    model = FakeOpenAI(FakeAnswer(content=["你好, ", "wörld ", "😀"], chunk_bytes=size, delay=0.1))
    async with model_server(model) as base_url, open_fake_wecom() as fake:
        handler = OpenAIHandler(LLMSettings(base_url=base_url))
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, bot_config(fake, heartbeat_interval=30), handler)
            cb = await fake.send_text("hi")
            assert (await fake.wait_stream_finished(cb.req_id)).content == "你好, wörld 😀"
            nursery.cancel_scope.cancel()
