"""The openai handler in webhook mode: the same handler, answered through stream-refresh polls."""

from __future__ import annotations

import trio
import trio.testing

from wecom_actors import BotConfig, serve_bot
from wecom_actors.handlers._llm_config import LLMSettings
from wecom_actors.handlers.openai import RESET_DONE, OpenAIHandler
from wecom_actors.testing import open_fake_webhook
from wecom_actors.testing.fake_openai import FakeAnswer, FakeOpenAI

TOKEN = "QDG6eK"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


async def test_a_reasoning_model_in_webhook_mode(autojump_clock: trio.testing.MockClock) -> None:
    model = FakeOpenAI(FakeAnswer(reasoning=["pondering ", "deeply"], content=["Forty", "-two."], delay=2.0))
    handler = OpenAIHandler(LLMSettings(base_url="http://model.test/v1", system_prompt=""), transport=model.transport)
    cfg = BotConfig(mode="webhook", token=TOKEN, encoding_aes_key=AES_KEY, host="127.0.0.1", port=0)
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, cfg, handler)
        url = f"http://127.0.0.1:{handle.runtime.port}{cfg.callback_path}"
        async with open_fake_webhook(url, token=TOKEN, encoding_aes_key=AES_KEY, poll_interval=1.0) as fake:
            view = await fake.send_text("the answer?")
            assert view.finished and view.content == "Forty-two." and not view.errors
            assert any("pondering deeply" in r for r in view.refreshes)  # the quote, while it thinks
            view = await fake.send_text("and again?")
            assert view.content == "Forty-two."
            assert [m["content"] for m in model.requests[1]["messages"]] == ["the answer?", "Forty-two.", "and again?"]
            assert (await fake.send_text("/reset")).content == RESET_DONE
        nursery.cancel_scope.cancel()
