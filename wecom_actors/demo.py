"""``wecom-actors demo``, ``fake-server`` and ``chat``: the bundled fake WeCom, no credentials.

The demo starts the fake and the echo bot in one trio program, plays a scripted conversation and
prints what the user would see. Every step is checked; a step that goes wrong fails the demo.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import string
import struct
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

import trio

from .bot import BotHandle, serve_bot
from .config import BotConfig
from .handlers.echo import echo, long_text
from .testing import (
    Bubble,
    FakeTLS,
    FakeWebhookWeCom,
    FakeWeCom,
    LongConnSimulator,
    Simulator,
    WebhookSimulator,
    open_fake_wecom,
    serve_control_api,
    serve_fake_openws,
)

__all__ = ["longconn_demo", "run_chat", "run_fake_server", "tiny_png"]

STEP_TIMEOUT = 15.0


def tiny_png(width: int = 16, height: int = 16) -> bytes:
    """A real PNG (a colour gradient), made here so the demo needs no files."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 16 % 256, y * 16 % 256, 128)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class DemoFailed(Exception):
    pass


class _Transcript:
    def __init__(self, fake: FakeWeCom, print_fn: Callable[[str], None]) -> None:
        self.fake = fake
        self.print = print_fn
        self.t0 = trio.current_time()

    def line(self, who: str, text: str, at: float | None = None) -> None:
        shown = text if len(text) <= 160 else f"{text[:100]}... ({len(text.encode())} bytes in all)"
        when = (trio.current_time() if at is None else at) - self.t0
        self.print(f"[{when:6.2f}s] {who}: {shown}")

    async def wait(self, what: str, predicate: Callable[[], bool]) -> None:
        with trio.move_on_after(STEP_TIMEOUT):
            await self.fake.wait_until(predicate)
            return
        raise DemoFailed(f"timed out waiting for {what}")

    def bubbles(self, conv: str) -> list[Bubble]:
        return self.fake.conversation(conv)

    def stream_frames(self, req_id: str) -> list[tuple[float, str]]:
        frames = []
        for f in self.fake.frames:
            data = f.data or {}
            if f.direction == "in" and f.req_id == req_id and data.get("cmd") == "aibot_respond_msg":
                stream = (data.get("body") or {}).get("stream")
                if stream is not None:
                    frames.append((f.time, stream.get("content", "")))
        return frames


async def longconn_demo(*, print_fn: Callable[[str], None] = print) -> int:
    """Play the scripted conversation; return 0 when every step showed what it should."""
    async with open_fake_wecom() as fake:
        config = BotConfig(
            mode="long-connection",
            bot_id=fake.bot_id,
            bot_secret=fake.secret,
            ws_url=fake.url,
            media_allow_private=True,  # the fake serves media on 127.0.0.1
        )
        print_fn(f"wecom-actors demo: the echo bot against the bundled fake WeCom at {fake.url}")
        print_fn("(long-connection mode, no credentials; what follows is what the user sees)\n")
        async with trio.open_nursery() as nursery:
            bot: BotHandle = await nursery.start(_serve, config)
            t = _Transcript(fake, print_fn)
            try:
                await _script(t, fake)
            except DemoFailed as exc:
                print_fn(f"\ndemo FAILED: {exc}")
                nursery.cancel_scope.cancel()
                return 1
            stats = bot.statistics()
            print_fn(
                f"\nDone: {stats.received} callbacks handled, {stats.handler_errors} handler errors, "
                f"{stats.replies_failed} failed replies, {stats.reconnects} reconnects."
            )
            nursery.cancel_scope.cancel()
    return 0


async def _serve(config: BotConfig, *, task_status: trio.TaskStatus[BotHandle]) -> None:
    await serve_bot(config, echo, task_status=task_status, rng=random.Random())


async def _script(t: _Transcript, fake: FakeWeCom) -> None:
    user = "alice"
    t.line(user, "(opens the chat with the bot)")
    await fake.send_enter_chat(userid=user)
    await t.wait("the welcome", lambda: any(b.kind == "text" for b in t.bubbles(user)))
    t.line("bot (welcome)", next(b for b in t.bubbles(user) if b.kind == "text").content)

    for text in ("Hello, bot!", "/slow 2 streaming one word at a time, ten frames a second at most"):
        t.line(user, text)
        cb = await fake.send_text(text, userid=user)
        await t.wait("the streamed reply", partial(_finished, fake, cb.req_id))
        view = fake.stream(cb.req_id)
        assert view is not None
        frames = t.stream_frames(cb.req_id)
        for i, (at, content) in enumerate(frames[:-1], 1):
            t.line(f"bot (stream {view.id}, frame {i})", content, at)
        t.line(f"bot (stream {view.id}, final frame {len(frames)})", view.content, frames[-1][0])
        expected = text if not text.startswith("/slow") else text.split(" ", 2)[2]
        if view.content != expected:
            raise DemoFailed(f"the reply to {text!r} was {view.content!r}")

    png = tiny_png()
    t.line(user, f"(sends an image, {len(png)} bytes, md5 {hashlib.md5(png).hexdigest()})")
    cb = await fake.send_image(png, userid=user)
    await t.wait("the image reply", lambda: (fake.stream(cb.req_id) or _NO).finished)
    content = fake.stream(cb.req_id).content  # type: ignore[union-attr]
    t.line("bot", content)
    if hashlib.md5(png).hexdigest() not in content:
        raise DemoFailed("the image reply does not carry the image's md5")

    t.line(user, "/push a proactive hello")
    before = len(t.bubbles(user))
    await fake.send_text("/push a proactive hello", userid=user)
    await t.wait("the push", lambda: any(b.kind == "markdown" for b in t.bubbles(user)[before:]))
    for b in t.bubbles(user)[before:]:
        t.line(f"bot ({b.kind})", b.content)

    t.line(user, "/card")
    await fake.send_text("/card", userid=user)
    await t.wait("the card", lambda: any(b.kind == "template_card" for b in t.bubbles(user)))
    card = next(b for b in t.bubbles(user) if b.kind == "template_card").card or {}
    t.line("bot (card)", f"{card.get('main_title', {}).get('title')} [buttons: yes / no]")
    t.line(user, "(clicks 'yes')")
    await fake.send_card_click(str(card.get("task_id")), "yes", userid=user)
    await t.wait(
        "the card update", lambda: next(b for b in t.bubbles(user) if b.kind == "template_card").updates > 0
    )
    updated = next(b for b in t.bubbles(user) if b.kind == "template_card").card or {}
    t.line("bot (card updated)", str(updated.get("main_title", {}).get("title")))

    t.line(user, "/long 25000")
    before = len(t.bubbles(user))
    await fake.send_text("/long 25000", userid=user)
    await t.wait("the long reply", lambda: len(t.bubbles(user)) >= before + 2)
    parts = [b.content for b in t.bubbles(user)[before:]]
    for b in t.bubbles(user)[before:]:
        t.line(f"bot ({b.kind}, {len(b.content.encode())} bytes)", b.content)
    if "".join(parts) != long_text(25000):
        raise DemoFailed("the long reply's parts do not add up to the 25000 bytes")


class _NoStream:
    finished = False


_NO = _NoStream()


def _finished(fake: FakeWeCom, req_id: str) -> bool:
    return (fake.stream(req_id) or _NO).finished


def _control_lines(control_url: str) -> list[str]:
    return [
        f"simulator page: {control_url}/",
        f"control API:    {control_url}/api/v1  (see docs/testing-control-api.md)",
    ]


async def run_fake_server(
    *, host: str = "127.0.0.1", port: int = 0, bot_id: str | None = None, secret: str | None = None,
    control_host: str = "127.0.0.1", control_port: int = 0, mode: str = "long-connection",
    bot_url: str | None = None, token: str | None = None, encoding_aes_key: str | None = None,
    bot_name: str = "Bot", tls_ca_file: str | None = None,
    print_fn: Callable[[str], None] = print, **fake_kwargs: Any,
) -> int:
    """Serve the fake WeCom and its control API until cancelled, printing where they listen.
    With ``tls_ca_file`` the long-connection endpoint is ``wss://`` with a throwaway CA, whose
    certificate is written to that file for clients to trust.

    Long-connection mode: the WebSocket endpoint on ``host``/``port``. Webhook mode: the fake
    plays WeCom against ``bot_url`` (with ``token`` / ``encoding_aes_key``), polling streams."""
    async with trio.open_nursery() as nursery:
        sim: Simulator
        if mode == "webhook":
            if not (bot_url and token and encoding_aes_key):
                raise ValueError("webhook mode needs bot_url, token and encoding_aes_key")
            hook = FakeWebhookWeCom(bot_url, token=token, encoding_aes_key=encoding_aes_key,
                                    host=host, strict=False, **fake_kwargs)  # fmt: skip
            await nursery.start(hook.run)
            sim = WebhookSimulator(hook, bot_name=bot_name)
            print_fn(f"fake WeCom (webhook) calling your bot at {bot_url}")
            print_fn(f"media and response_urls served from {hook.base_url}")
        else:
            bots = {bot_id or "fake-bot": secret or "fake-secret"}
            fake = FakeWeCom(bots=bots, **fake_kwargs)
            tls = FakeTLS.create() if tls_ca_file else None
            await nursery.start(partial(serve_fake_openws, fake, host=host, port=port, tls=tls))
            sim = LongConnSimulator(fake, bot_name=bot_name)
            print_fn(f"fake WeCom (long connection) listening at {fake.url}")
            print_fn(f"media served from {fake.media_base_url}")
            print_fn("run a bot against it with:")
            print_fn(f"  WECOM_WS_URL={fake.url} WECOM_BOT_ID={fake.bot_id} WECOM_BOT_SECRET=<the secret> \\")
            print_fn("  WECOM_MEDIA_ALLOW_PRIVATE=1 wecom-actors run")
            print_fn(f"(the secret is {'the one you passed with --secret' if secret else 'fake-secret'})")
            if tls is not None and tls_ca_file:
                path = tls.write_ca(tls_ca_file).resolve()
                print_fn(f"wss:// with a throwaway CA written to {path}; trust it with")
                print_fn(f"  NODE_EXTRA_CA_CERTS={path} (Node), SSL_CERT_FILE={path} (OpenSSL default store)")
        control_url = await nursery.start(partial(serve_control_api, sim, host=control_host, port=control_port))
        for line in _control_lines(control_url):
            print_fn(line)
    return 0


async def run_chat(
    handler: Any, *, mode: str = "long-connection", control_host: str = "127.0.0.1",
    control_port: int = 0, bot_name: str = "Bot", print_fn: Callable[[str], None] = print,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> int:
    """``wecom-actors chat``: the fake, your handler served by this runtime, the control API and
    the simulator page; prints the page's URL and runs until cancelled. ``started()`` with the
    control URL. A bot that stops (e.g. kicked out on purpose) is reported; the page stays."""
    async with trio.open_nursery() as nursery:
        sim: Simulator
        if mode == "webhook":
            alphabet = string.ascii_letters + string.digits  # what WeCom's console generates
            token = "".join(secrets.choice(alphabet) for _ in range(16))
            key = "".join(secrets.choice(alphabet) for _ in range(43))
            config = BotConfig(mode="webhook", token=token, encoding_aes_key=key, host="127.0.0.1",
                               port=0, media_allow_private=True)  # fmt: skip
            handle = await nursery.start(_serve_reporting, config, handler, print_fn)
            bot_url = f"http://127.0.0.1:{handle.runtime.port}{config.callback_path}"
            hook = FakeWebhookWeCom(bot_url, token=token, encoding_aes_key=key, strict=False)
            await nursery.start(hook.run)
            verify = await hook.verify_url()
            if not verify.ok:
                raise RuntimeError(f"the bot failed URL verification: HTTP {verify.status}")
            sim = WebhookSimulator(hook, bot_name=bot_name)
        else:
            fake = FakeWeCom(idle_timeout=None)
            await nursery.start(serve_fake_openws, fake)
            config = BotConfig(mode="long-connection", bot_id=fake.bot_id, bot_secret=fake.secret,
                               ws_url=fake.url, media_allow_private=True)  # fmt: skip
            await nursery.start(_serve_reporting, config, handler, print_fn)
            sim = LongConnSimulator(fake, bot_name=bot_name)
        control_url = await nursery.start(partial(serve_control_api, sim, host=control_host, port=control_port))
        print_fn(f"wecom-actors chat: your bot ({mode}) against the bundled fake WeCom")
        for line in _control_lines(control_url):
            print_fn(line)
        print_fn("open the page in a browser; Ctrl+C stops everything")
        task_status.started(control_url)
    return 0


async def _serve_reporting(
    config: BotConfig, handler: Any, print_fn: Callable[[str], None], *,
    task_status: trio.TaskStatus[BotHandle],
) -> None:
    from .errors import TerminalError

    try:
        await serve_bot(config, handler, task_status=task_status, rng=random.Random())
    except TerminalError as exc:
        print_fn(f"the bot stopped: {type(exc).__name__}: {exc}")
