"""The reference echo bot, written on the official ``wecom-aibot-python-sdk`` (1.0.2).

    benchmarks/.venv-ref/bin/python benchmarks/reference_bot.py

Runs in its own virtual environment (``benchmarks/.venv-ref``, created by ``bench_longconn.py``
on first run: ``python -m venv`` + ``pip install wecom-aibot-python-sdk==1.0.2``), never in the
project's. Settings come from the same environment variables as ``wecom-actors run``:
``WECOM_WS_URL``, ``WECOM_BOT_ID``, ``WECOM_BOT_SECRET``, ``WECOM_LOG_LEVEL`` (default WARNING).

It answers a text message exactly like our built-in ``echo`` handler: one stream, two frames, the
first half of the text with ``finish=false``, then the whole text with ``finish=true``; each
``reply_stream`` waits for its ack (the SDK's per-req_id serial queue), as ours does.

The ``ws://`` workaround. The SDK takes a custom URL (``WSClientOptions(ws_url=...)``), but its
``WsConnectionManager.connect`` always calls ``websockets.connect(url, ssl=_SSL_CONTEXT, ...)``
with the module-level TLS context ``aibot.ws._SSL_CONTEXT`` (certifi CA bundle), and websockets
refuses an ``ssl`` argument on a ``ws://`` URI ("ssl argument is incompatible with a ws:// URI").
So, for a ``ws://`` URL only, this script sets ``aibot.ws._SSL_CONTEXT = None`` before
connecting (the global is read at call time); nothing else of the SDK is changed. For ``wss://``
the SDK is used untouched.

Logging: the SDK's ``DefaultLogger`` prints every INFO line to stderr; this bot passes a logger
with the same interface that drops DEBUG/INFO unless ``WECOM_LOG_LEVEL`` asks for them (ours runs
with ``--log-level WARNING`` in the benchmarks). The SDK still formats its per-frame debug
messages (f-strings with ``json.dumps``) before the logger drops them: that is the SDK's cost.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
from datetime import UTC, datetime
from typing import Any

import aibot.ws
from aibot import WSClient, WSClientOptions, generate_req_id

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class Logger:
    """The SDK's logger interface (debug/info/warn/error), filtered by level."""

    def __init__(self, level: str) -> None:
        self.level = _LEVELS.get(level.upper(), 30)

    def _log(self, level: int, name: str, message: str, *args: object) -> None:
        if level >= self.level:
            stamp = datetime.now(UTC).isoformat()
            print(f"[{stamp}] [reference-bot] [{name}] {message}", *args, file=sys.stderr)

    def debug(self, message: str, *args: object) -> None:
        self._log(10, "DEBUG", message, *args)

    def info(self, message: str, *args: object) -> None:
        self._log(20, "INFO", message, *args)

    def warn(self, message: str, *args: object) -> None:
        self._log(30, "WARN", message, *args)

    def error(self, message: str, *args: object) -> None:
        self._log(40, "ERROR", message, *args)


def make_client(url: str, bot_id: str, secret: str, logger: Logger) -> WSClient:
    if url.startswith("ws://"):
        aibot.ws._SSL_CONTEXT = None  # the workaround: see the module docstring
    client = WSClient(
        WSClientOptions(
            bot_id=bot_id,
            secret=secret,
            ws_url=url,
            logger=logger,
            max_reconnect_attempts=-1,
        )
    )

    @client.on("message.text")
    async def on_text(frame: dict[str, Any]) -> None:
        text = frame.get("body", {}).get("text", {}).get("content", "")
        if text == "/gcstats":  # the benchmark reads the collector's counters (not measured)
            stats = gc.get_stats()
            counters = {k: [g[k] for g in stats] for k in ("collections", "collected", "uncollectable")}
            await client.reply_stream(frame, generate_req_id("stream"), json.dumps(counters), True)
            return
        cut = max(1, len(text) // 2)
        stream_id = generate_req_id("stream")
        await client.reply_stream(frame, stream_id, text[:cut], False)
        await client.reply_stream(frame, stream_id, text, True)

    @client.on("error")
    def on_error(error: Exception) -> None:
        logger.error(f"{type(error).__name__}: {error}")

    return client


async def main() -> int:
    url = os.environ.get("WECOM_WS_URL", aibot.ws.DEFAULT_WS_URL)
    bot_id, secret = os.environ.get("WECOM_BOT_ID", ""), os.environ.get("WECOM_BOT_SECRET", "")
    if not bot_id or not secret:
        print("reference_bot: WECOM_BOT_ID and WECOM_BOT_SECRET are required", file=sys.stderr)
        return 2
    logger = Logger(os.environ.get("WECOM_LOG_LEVEL", "WARNING"))
    client = make_client(url, bot_id, secret, logger)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await client.connect()
    await stop.wait()
    client.disconnect()
    await asyncio.sleep(0.1)  # let the close frame go out
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
