"""Webhook stream timing: which answer carries which text, in exact virtual time.

The callbacks go straight into the bot's ASGI app (no sockets), so the mock clock is exact: a
refresh poll happens precisely when the test says. Callbacks are built and answers opened with
the bundled fake's own crypto (written from the spec, not the bot's).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from wecom_actors import BotConfig, Turn, serve_bot
from wecom_actors.protocol.inbound import decode_callback
from wecom_actors.renderer import Settled
from wecom_actors.testing._webhook_crypto import aes_key, decrypt_msg, encrypt_msg, sign
from wecom_actors.webhook.streams import POLL_WAIT, POLL_WAIT_SLACK, Exchange, Phase, StreamTable

TOKEN = "pollTestToken"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PATH = "/wecom/callback"


class Driver:
    """Plays WeCom against the bot's ASGI app, in-process."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.key = aes_key(KEY)
        self.ids = itertools.count(1)
        self.callbacks = 0

    async def post(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        self.callbacks += 1
        n = next(self.ids)
        encrypt = encrypt_msg(self.key, json.dumps(payload).encode(), n.to_bytes(16, "big"))
        ts, nonce = str(int(time.time())), str(1000000000 + n)
        query = f"msg_signature={sign(TOKEN, ts, nonce, encrypt)}&timestamp={ts}&nonce={nonce}"
        body = json.dumps({"encrypt": encrypt}).encode()
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "POST",
            "path": PATH,
            "query_string": query.encode(),
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
        sent: list[dict[str, Any]] = []
        received = False

        async def receive() -> dict[str, Any]:
            nonlocal received
            if received:
                await trio.sleep_forever()
            received = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        assert sent[0]["status"] == 200, sent
        raw = sent[1]["body"]
        if not raw:
            return None
        env = json.loads(raw)
        assert env["nonce"] == nonce
        assert sign(TOKEN, str(env["timestamp"]), env["nonce"], env["encrypt"]) == env["msgsignature"]
        return json.loads(decrypt_msg(self.key, env["encrypt"]))

    async def send_text(self, text: str, user: str = "u1") -> dict[str, Any]:
        payload = {
            "msgid": f"msg{next(self.ids)}",
            "aibotid": "bot",
            "chattype": "single",
            "from": {"userid": user},
            "msgtype": "text",
            "text": {"content": text},
        }
        answer = await self.post(payload)
        assert answer is not None and answer["msgtype"] == "stream"
        return answer["stream"]

    async def refresh(self, stream_id: str, user: str = "u1") -> dict[str, Any]:
        payload = {
            "msgid": f"refresh{next(self.ids)}",
            "aibotid": "bot",
            "chattype": "single",
            "from": {"userid": user},
            "msgtype": "stream",
            "stream": {"id": stream_id},
        }
        answer = await self.post(payload)
        assert answer is not None and answer["stream"]["id"] == stream_id
        return answer["stream"]


@asynccontextmanager
async def bot(handler: Callable[[Turn], Awaitable[None]] | str) -> AsyncIterator[tuple[Any, Driver]]:
    cfg = BotConfig(mode="webhook", token=TOKEN, encoding_aes_key=KEY, host="127.0.0.1", port=0, callback_path=PATH)
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, cfg, handler)
        yield handle, Driver(handle.runtime.app)
        nursery.cancel_scope.cancel()


async def test_echo_finishes_on_the_first_refresh(autojump_clock: trio.testing.MockClock) -> None:
    """POST: the first half (the answer serves it, so the handler goes on at once); the first
    refresh poll, 0.2 s later: the whole text, finished. Two callbacks per message."""
    async with bot("echo") as (handle, wecom):
        for i in range(5):
            text = f"echo me please, number {i}"
            t0 = trio.current_time()
            first = await wecom.send_text(text, user=f"u{i}")
            assert (first["content"], first["finish"]) == (text[: len(text) // 2], False)
            await trio.sleep_until(t0 + 0.2)
            done = await wecom.refresh(first["id"], user=f"u{i}")
            assert (done["content"], done["finish"]) == (text, True)
        assert wecom.callbacks == 10
        assert handle.statistics().frames_in == 10


async def test_a_handler_faster_than_the_poll_interval_needs_two_callbacks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def thinker(turn: Turn) -> None:
        async with turn.stream() as s:
            await s.append("thinking... ")
            await s.flush()
            await trio.sleep(0.15)  # still within the first poll interval
            await s.append("done")

    async with bot(thinker) as (_, wecom):
        t0 = trio.current_time()
        first = await wecom.send_text("question")
        assert (first["content"], first["finish"]) == ("thinking... ", False)
        await trio.sleep_until(t0 + 0.2)
        done = await wecom.refresh(first["id"])
        assert (done["content"], done["finish"]) == ("thinking... done", True)
        assert wecom.callbacks == 2


async def test_a_chunk_appended_before_a_poll_is_in_that_polls_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """WeCom polls once a second; text appended while an earlier frame waits to be served must
    still be in the next answer (no one-poll lag)."""
    release = trio.Event()

    async def writer(turn: Turn) -> None:
        async with turn.stream() as s:
            await s.append("a")
            await s.flush()  # served by the POST's answer
            await trio.sleep(0.2)
            await s.append("b")  # a frame now waits for the next poll
            await trio.sleep(0.2)
            await s.append("c")  # 0.6 s before that poll, while "ab" is still unserved
            await release.wait()
            await s.append("d")
            await trio.sleep(0.3)
            await s.append("e")  # 0.7 s before the next poll

    async with bot(writer) as (_, wecom):
        t0 = trio.current_time()
        first = await wecom.send_text("go")
        assert (first["content"], first["finish"]) == ("a", False)
        await trio.sleep_until(t0 + 1.0)
        assert await wecom.refresh(first["id"]) == {"id": first["id"], "content": "abc", "finish": False}
        release.set()
        await trio.sleep_until(t0 + 2.0)
        assert await wecom.refresh(first["id"]) == {"id": first["id"], "content": "abcde", "finish": True}


async def test_flush_waits_for_an_answer_but_not_forever(autojump_clock: trio.testing.MockClock) -> None:
    """flush() returns once an answer carried the text; if WeCom stops polling, after POLL_WAIT."""
    times: dict[str, float] = {}
    flushed = trio.Event()

    async def flusher(turn: Turn) -> None:
        async with turn.stream() as s:
            await s.append("one")
            await s.flush()
            times["first"] = trio.current_time()
            await trio.sleep(0.5)
            await s.append(" two")
            t = trio.current_time()
            await s.flush()  # nobody polls any more
            times["waited"] = trio.current_time() - t
            flushed.set()

    async with bot(flusher) as (handle, wecom):
        t0 = trio.current_time()
        first = await wecom.send_text("hi")
        await trio.sleep(0.01)
        assert first["content"] == "one" and times["first"] == t0  # flush() returned at once
        await flushed.wait()
        assert POLL_WAIT <= times["waited"] <= POLL_WAIT + POLL_WAIT_SLACK + 0.11
        # the snapshot still has everything for a poll that comes late (once the final frame
        # has gone from SessionStreams through the ReplyRenderer into the snapshot)
        await trio.testing.wait_all_tasks_blocked()
        late = await wecom.refresh(first["id"])
        assert (late["content"], late["finish"]) == ("one two", True)
        assert handle.statistics().handler_errors == 0


# --- the table alone: settlements of served frames go to the SessionStreams mailbox -----------


def _exchange(table: StreamTable, msgid: str, stream_id: str) -> Exchange:
    raw = b'{"msgid": "%s", "chattype": "single", "from": {"userid": "u"}, "msgtype": "text", "text": {"content": "x"}}'
    message = decode_callback(raw % msgid.encode())
    ex = Exchange(msgid, message, stream_id=stream_id, created=0.0, is_event=False, response_url=None)
    table.add(ex)
    ex.phase = Phase.STREAM
    return ex


async def test_an_answer_settles_every_frame_it_carried_and_only_those(autojump_clock: trio.testing.MockClock) -> None:
    table = StreamTable()
    table.settlements, inbox = trio.open_memory_channel[list[Settled]](8)
    ex = _exchange(table, "m1", "s1")
    for n in (1, 2):
        assert table.frame_waits(ex, ex.set_frame("a" * n, False), (7, 0, n))
    answer = table.refresh("s1")
    assert b'"content":"aa"' in answer
    assert [s.token for s in inbox.receive_nowait()] == [(7, 0, 1), (7, 0, 2)]
    assert table.frame_waits(ex, ex.set_frame("aaa", False), (7, 0, 3))
    with pytest.raises(trio.WouldBlock):
        inbox.receive_nowait()  # not served yet: nothing settled
    assert b'"content":"aaa"' in table.refresh("s1")
    assert [s.token for s in inbox.receive_nowait()] == [(7, 0, 3)]


async def test_settlements_the_full_mailbox_cannot_take_are_sent_by_the_sweeper(
    autojump_clock: trio.testing.MockClock,
) -> None:
    table = StreamTable()
    table.settlements, inbox = trio.open_memory_channel[list[Settled]](1)
    table.settlements.send_nowait([])  # SessionStreams is busy: its mailbox is full
    ex = _exchange(table, "m1", "s1")
    assert table.frame_waits(ex, ex.set_frame("a", False), (1, 0, 1))
    table.refresh("s1")  # served: the settlement cannot be posted now, and is not lost
    async with trio.open_nursery() as nursery:
        await nursery.start(table.run_sweeper)
        assert inbox.receive_nowait() == []
        settled = await inbox.receive()
        assert [(s.token, s.error) for s in settled] == [((1, 0, 1), None)]
        nursery.cancel_scope.cancel()
