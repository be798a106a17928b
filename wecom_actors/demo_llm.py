"""``wecom-actors demo --handler openai``: the bundled fake WeCom and the ``openai`` handler.

With no model server configured (no ``OPENAI_BASE_URL``, no ``OPENAI_API_KEY``) the bundled fake
model answers, and the demo says so; otherwise the configured model does. The script shows a
streamed answer with its reasoning quote, the memory of a single chat, per-sender memory in a
group and ``/reset``. Every step is checked (more strictly with the fake model, whose answers
are known); a step that goes wrong fails the demo.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import trio

from .bot import BotHandle, serve_bot
from .config import BotConfig
from .demo import DemoFailed, _Transcript
from .handlers._llm_config import LLMSettings
from .handlers._llm_view import THINKING
from .handlers.openai import RESET_DONE, OpenAIHandler
from .testing import FakeWeCom, open_fake_wecom

__all__ = ["llm_demo"]


async def llm_demo(*, print_fn: Callable[[str], None] = print, environ: Mapping[str, str] | None = None) -> int:
    """Play the scripted conversation; return 0 when every step showed what it should."""
    handler = OpenAIHandler(LLMSettings.load(environ=environ))
    settings = handler.settings
    if handler.uses_fake:
        print_fn("wecom-actors demo: the openai handler with the BUNDLED FAKE MODEL (no network):")
        print_fn("no OPENAI_BASE_URL or OPENAI_API_KEY is set, so the answers below are canned.")
    else:
        print_fn(f"wecom-actors demo: the openai handler with model {settings.model!r} at {settings.endpoint}")
    async with open_fake_wecom() as fake:
        config = BotConfig(
            mode="long-connection", bot_id=fake.bot_id, bot_secret=fake.secret, ws_url=fake.url
        )
        print_fn(f"(the bundled fake WeCom at {fake.url}; what follows is what the users see)\n")
        async with trio.open_nursery() as nursery:

            async def serve(*, task_status: trio.TaskStatus[BotHandle]) -> None:
                await serve_bot(config, handler, task_status=task_status, rng=random.Random())

            await nursery.start(serve)
            t = _Transcript(fake, print_fn)
            try:
                await _script(t, fake, checked=handler.uses_fake)
            except DemoFailed as exc:
                print_fn(f"\ndemo FAILED: {exc}")
                return 1
            finally:
                nursery.cancel_scope.cancel()
    print_fn("\nDone. See docs/llm.md to connect a real model (OpenAI, Ollama, vLLM...).")
    return 0


async def _ask(t: _Transcript, fake: FakeWeCom, text: str, *, user: str, chat: str | None = None) -> str:
    who = f"{user} (group {chat})" if chat else user
    t.line(who, text)
    cb = await fake.send_text(text, userid=user, chatid=chat)
    await t.wait("the answer", lambda: (s := fake.stream(cb.req_id)) is not None and s.finished)
    frames = t.stream_frames(cb.req_id)
    quoted = [(at, c) for at, c in frames if c.startswith(THINKING)]
    if quoted:
        at, content = quoted[-1]
        t.line(f"bot (while thinking, {len(quoted)} frames)", content.replace("\n", " "), at)
    view = fake.stream(cb.req_id)
    assert view is not None
    t.line(f"bot ({len(frames)} frames)", view.content, frames[-1][0] if frames else None)
    if not view.content.strip():
        raise DemoFailed(f"the answer to {text!r} is empty")
    if THINKING in view.content or "<think>" in view.content:
        raise DemoFailed(f"the final answer to {text!r} still shows the reasoning")
    return view.content


async def _script(t: _Transcript, fake: FakeWeCom, *, checked: bool) -> None:
    def expect(ok: bool, what: str) -> None:
        if checked and not ok:
            raise DemoFailed(what)

    first = await _ask(t, fake, "Hello! Think about what a WeCom bot is, please.", user="alice")
    expect("fake model" in first, "the fake model did not say it is a fake")
    second = await _ask(t, fake, "What did I just ask you?", user="alice")
    expect("I remember 1 earlier" in second, "the second answer does not remember the first")
    await _ask(t, fake, "@Bot Hi, I am Bob.", user="bob", chat="G1")
    group = await _ask(t, fake, "@Bot Who am I?", user="alice", chat="G1")
    expect("I remember" not in group, "alice's group question was answered with someone's memory")
    again = await _ask(t, fake, "@Bot And who am I?", user="bob", chat="G1")
    expect("I remember 1 earlier" in again, "bob's memory in the group was lost")
    reset = await _ask(t, fake, "/reset", user="alice")
    if reset != RESET_DONE:
        raise DemoFailed(f"/reset answered {reset!r}")
    after = await _ask(t, fake, "Do you remember me?", user="alice")
    expect("I remember" not in after, "the memory survived /reset")
