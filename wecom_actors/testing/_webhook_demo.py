"""The webhook demo: the echo bot and the bundled fake WeCom, with a printed transcript.

Reached through :func:`wecom_actors.testing._webhook.webhook_demo_transcript`
(``wecom-actors demo --mode webhook``). Unlike the fake itself, this module imports the bot.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Callable

import trio

from ..bot import serve_bot
from ..config import BotConfig
from ..handlers.echo import long_text
from ._webhook import WebhookView, open_fake_webhook

__all__ = ["DEMO_IMAGE", "run_webhook_demo"]

#: A PNG signature and 24 counter bytes, the plaintext of the media test vector.
DEMO_IMAGE = bytes.fromhex("89504e470d0a1a0a000102030405060708090a0b0c0d0e0f1011121314151617")


async def run_webhook_demo(*, print_fn: Callable[[str], object] = print, poll_interval: float = 0.25) -> int:
    """Run the scripted conversation; returns 0 when every step looked right, else 1."""
    rng = random.Random()
    alphabet = string.ascii_letters + string.digits
    token = "".join(rng.choice(alphabet) for _ in range(16))
    key = "".join(rng.choice(alphabet) for _ in range(43))
    config = BotConfig(mode="webhook", token=token, encoding_aes_key=key, host="127.0.0.1", port=0, media_allow_private=True)
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(what)
            print_fn(f"  !! {what}")

    def show(view: WebhookView) -> None:
        first = ((view.first_reply or {}).get("stream") or {}).get("content", "")
        print_fn(f"  bot: stream {view.stream_id} answered the POST in {view.latency * 1000:.0f} ms: {_short(first)!r}")
        for i, content in enumerate(view.refreshes, 1):
            print_fn(f"  bot: refresh {i}: {_short(content)!r}")
        print_fn(f"  bot: final{' (finish)' if view.finished else ' (NOT finished)'}: {_short(view.content)!r}")
        for i, item in enumerate(view.msg_items, 1):
            print_fn(f"  bot: image {i}: md5 {item['image']['md5']}")
        check(not view.errors, f"{view.msgid}: {view.errors}")

    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, config, "echo")
        url = f"http://127.0.0.1:{handle.runtime.port}{config.callback_path}"
        async with open_fake_webhook(url, token=token, encoding_aes_key=key, poll_interval=poll_interval, strict=False) as fake:
            print_fn(f"webhook demo: echo bot at {url}; fake WeCom polls every {poll_interval:g} s")
            verify = await fake.verify_url()
            print_fn(f"[verify] GET echostr -> HTTP {verify.status} {verify.body.decode(errors='replace')!r}")
            check(verify.ok, "URL verification failed")
            enter = await fake.send_enter_chat()
            welcome = ((enter.welcome or {}).get("text") or {}).get("content")
            print_fn(f"[enter_chat]\n  bot: welcome {welcome!r}")
            check(bool(welcome), "no welcome message")
            for text in ("hello from the webhook demo", "/slow 2 a b c d"):
                print_fn(f"[user] {text}")
                view = await fake.send_text(text)
                show(view)
                expected = text.split(" ", 2)[2] if text.startswith("/slow") else text
                check(view.finished and view.content == expected, f"{text!r}: final content {view.content!r}")
                check(len(view.answers) >= 2, f"{text!r}: not streamed (one answer only)")
            print_fn(f"[user] an image ({len(DEMO_IMAGE)} bytes, md5 {hashlib.md5(DEMO_IMAGE).hexdigest()})")
            view = await fake.send_image(DEMO_IMAGE)
            show(view)
            check(hashlib.md5(DEMO_IMAGE).hexdigest() in view.content, "the image's md5 is not in the reply")
            for text, expected in (("/push hi", "hi"), ("/long 25000", long_text(25000)[20480:])):
                print_fn(f"[user] {text}")
                view = await fake.send_text(text)
                show(view)
                with trio.move_on_after(10):
                    await fake.wait_pushes(view)
                print_fn(f"  bot via response_url: {_short(view.push_text)!r} ({len(view.push_text.encode())} bytes)")
                check(view.push_text == expected, f"{text!r}: response_url text is not as expected")
            if text.startswith("/long"):
                check(view.content + view.push_text == long_text(25000), "/long: the parts do not add up")
            check(await handle.drain(5.0), "the bot did not drain within 5 s")
        stats = handle.statistics()
        print_fn(f"[bot] {stats.received} messages handled, {stats.frames_in} callbacks, {stats.junk_frames} rejected")
        nursery.cancel_scope.cancel()
    print_fn("demo OK" if not problems else f"demo FAILED: {len(problems)} problem(s)")
    return 0 if not problems else 1


def _short(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text.encode())} bytes)"
