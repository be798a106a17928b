"""The load generator: the bundled fake WeCom in its own process, driven over stdin/stdout.

    python benchmarks/_loadgen.py --bots ID:SECRET[,ID:SECRET...] [--host 127.0.0.1]

Started by the benchmark scripts (never by hand, and never by the test suite). It serves
``FakeWeCom(record=False, rate_limit=False, idle_timeout=None)`` on 127.0.0.1, port 0, prints one
JSON line ``{"event": "ready", "url": ..., "pid": ...}`` and then answers JSON commands, one per
stdin line, with JSON lines on stdout: any number of ``{"id": N, "progress": done, "total": n}``
while a command runs, then exactly one ``{"id": N, "result": {...}}`` (or ``"error"``).

Commands (``op``):

* ``wait_subscribed`` ``bot_id``, ``count``, ``timeout``: until that many subscribes of the bot
  have succeeded in total;
* ``load`` ``bot_id``, ``mode`` (``closed``/``burst``/``paced``; paced takes ``rate``, messages a
  second in all), ``users``, ``messages``, ``timeout``,
  ``tag`` (and ``users_tag``, default ``tag``: the users' names): U users x M text messages. Closed: each user sends its next message once the finish
  frame of the previous one arrived (or its ``timeout`` passed: lost). Burst: every message is
  pushed at once, round-robin over the users, then everything is awaited. Returns the latency of
  every message (callback pushed -> finish frame received, seconds), lost / duplicated / wrong
  replies (the echo contract: the final content must equal the text) and the fake's CPU time;
* ``steady`` ``bot_ids``, ``rate``, ``seconds``, ``timeout``: every bot gets ``rate`` messages a
  second (each from a new user), spread evenly, for ``seconds``; then the replies are awaited;
* ``hold`` ``bot_id``, ``count``, ``timeout``: ``count`` messages from distinct users; returns
  once the first frame of every reply's stream has been accepted (the in-flight streams exist);
* ``release`` ``bot_id``, ``timeout``: sends ``/release`` and waits until every held stream has
  finished; checks the echo contract on each;
* ``say`` ``bot_id``, ``text``: one message, returns the final content of the reply;
* ``reset``: forget all callbacks, streams and conversations (between phases);
* ``stats``: the fake's ``statistics()``; ``quit``: stop.

How replies are observed: a small subclass of the fake sees every ``aibot_respond_msg`` frame the
moment the fake judges it (``FakeWeCom._process``; an internal hook, so this process needs no
wait-per-message on the fake's global change event, which would wake every waiter on every
frame and make the load generator quadratic in the number of users). The time taken is the
frame's arrival (``trio.current_time()`` when the fake read it); the push time is taken just
before ``send_text``. A finish frame counts once the fake has accepted it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from typing import Any

import _procs
import trio

from wecom_actors.testing import FakeWeCom, NotConnected, serve_fake_openws

TEXT = "你好，机器人！请把这句话原样回给我：{tag} 用户 {user} 第 {i} 条消息。"
PROGRESS_EVERY = 0.25  # seconds between progress lines


class _Reply:
    """What the fake saw of the reply to one callback."""

    __slots__ = ("content", "event", "finish_frames", "finished_at", "first_at", "frames")

    def __init__(self) -> None:
        self.first_at: float | None = None  # first accepted stream frame
        self.finished_at: float | None = None  # first accepted finish frame
        self.content: str | None = None
        self.frames = 0
        self.finish_frames = 0
        self.event: trio.Event | None = None


class BenchFake(FakeWeCom):
    """The fake plus a per-req_id view of the replies, updated as each frame is judged."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replies: dict[str, _Reply] = {}
        self.first_frame_waiters = 0
        self.first_frames_seen = 0
        self.first_frames_event = trio.Event()

    def reset(self) -> None:
        """Forget every callback, stream and conversation (between phases, nothing in flight),
        so the fake's state and its garbage-collection work do not grow from round to round."""
        self.replies.clear()
        self._rules.callbacks.clear()
        self._rules.streams_by_req.clear()
        for bot in self._bots.values():
            bot.conversations.clear()
            bot.streams.clear()
            bot.opened.clear()
            bot.sends.clear()
        gc.collect()
        gc.freeze()  # what survives is the server itself: keep it out of later collections

    def reply(self, req_id: str) -> _Reply:
        r = self.replies.get(req_id)
        if r is None:
            r = self.replies[req_id] = _Reply()
        return r

    async def _process(  # type: ignore[override]
        self, conn: Any, bot: Any, cmd: str, req_id: str, body: Any, now: float, *args: Any
    ) -> None:
        await super()._process(conn, bot, cmd, req_id, body, now, *args)
        if cmd != "aibot_respond_msg" or type(body) is not dict:
            return
        stream = body.get("stream")
        if type(stream) is not dict:
            return
        # Created here too: the reply can be judged before the pushing task has looked at it.
        r = self.reply(req_id)
        finish = stream.get("finish") is True
        r.frames += 1
        r.finish_frames += finish
        streams = self._rules.streams_by_req.get(req_id)
        accepted = bool(streams) and streams[-1].accepted > 0
        if accepted and r.first_at is None:
            r.first_at = now
            self.first_frames_seen += 1
            if self.first_frames_seen >= self.first_frame_waiters:
                self.first_frames_event.set()
        if finish and r.finished_at is None and streams and streams[-1].bubble.finished:
            r.finished_at = now
            r.content = streams[-1].bubble.content
            if r.event is not None:
                r.event.set()


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class _Progress:
    def __init__(self, cmd_id: int, total: int) -> None:
        self.cmd_id, self.total, self.done = cmd_id, total, 0
        self._next = 0.0

    def tick(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now >= self._next or self.done >= self.total:
            self._next = now + PROGRESS_EVERY
            _emit({"id": self.cmd_id, "progress": self.done, "total": self.total})


def _summary(
    fake: BenchFake, sent: list[tuple[str, float, str]], *, t_first: float, t_end: float
) -> dict[str, Any]:
    """Judge every pushed callback: latency, lost, duplicated, wrong content."""
    latencies: list[float] = []
    lost = duplicated = wrong = 0
    examples: list[str] = []
    last_finish = t_first
    for req_id, t0, text in sent:
        r = fake.replies.get(req_id)
        streams = fake._rules.streams_by_req.get(req_id) or []
        if r is None or r.finished_at is None:
            lost += 1
            if len(examples) < 3:
                examples.append(f"lost: {text!r} ({0 if r is None else r.frames} frames)")
            continue
        if r.finish_frames > 1 or len(streams) > 1:
            duplicated += 1
        if r.content != text:
            wrong += 1
            if len(examples) < 3:
                examples.append(f"wrong: {text!r} -> {r.content!r}")
        latencies.append(r.finished_at - t0)
        last_finish = max(last_finish, r.finished_at)
    return {
        "messages": len(sent),
        "latencies": latencies,
        "lost": lost,
        "duplicated": duplicated,
        "wrong": wrong,
        "examples": examples,
        # first push -> last finish frame; the whole command took t_end - t_first
        "duration": (last_finish - t_first) if latencies else t_end - t_first,
    }


async def _push(fake: BenchFake, text: str, user: str, bot_id: str) -> tuple[str, float]:
    t0 = trio.current_time()
    cb = await fake.send_text(text, userid=user, bot_id=bot_id)
    fake.reply(cb.req_id)
    return cb.req_id, t0


async def _finished(fake: BenchFake, req_id: str, limit: float | None = None) -> _Reply:
    """The reply to ``req_id`` once its finish frame is accepted (or ``limit`` seconds passed)."""
    r = fake.reply(req_id)
    if r.finished_at is None:
        r.event = trio.Event()
        if limit is None:  # no cancel scope: it would cost the load generator per message
            await r.event.wait()
        else:
            with trio.move_on_after(limit):
                await r.event.wait()
    return r


async def _all_finished(
    fake: BenchFake, sent: list[tuple[str, float, str]], progress: _Progress
) -> None:
    """Until every reply in ``sent`` is finished, one progress tick each."""
    for req_id, _, _ in sent:
        await _finished(fake, req_id)
        progress.tick()


async def cmd_load(fake: BenchFake, cmd: dict[str, Any], cmd_id: int) -> dict[str, Any]:
    bot_id, mode = cmd["bot_id"], cmd["mode"]
    users, messages = int(cmd["users"]), int(cmd["messages"])
    timeout, tag = float(cmd.get("timeout", 30.0)), str(cmd.get("tag", "m"))
    users_tag = str(cmd.get("users_tag", tag))  # the same users across commands (soak)
    per_message = float(cmd.get("per_message_timeout", min(timeout, 10.0)))
    progress = _Progress(cmd_id, users * messages)
    sent: list[tuple[str, float, str]] = []
    cpu0 = time.process_time()
    t_first = trio.current_time()
    with trio.move_on_after(timeout):
        if mode == "closed":

            async def user_loop(u: int) -> None:
                user = f"{users_tag}-u{u:04d}"
                for i in range(messages):
                    text = TEXT.format(tag=tag, user=u, i=i)
                    req_id, t0 = await _push(fake, text, user, bot_id)
                    sent.append((req_id, t0, text))
                    await _finished(fake, req_id, per_message)
                    progress.tick()

            async with trio.open_nursery() as nursery:
                for u in range(users):
                    nursery.start_soon(user_loop, u)
        elif mode == "burst":
            for i in range(messages):
                for u in range(users):
                    text = TEXT.format(tag=tag, user=u, i=i)
                    req_id, t0 = await _push(fake, text, f"{users_tag}-u{u:04d}", bot_id)
                    sent.append((req_id, t0, text))
            await _all_finished(fake, sent, progress)
        elif mode == "paced":
            # ``rate`` messages a second in all, the users taking turns: nothing batches, every
            # hop of the bot is a wake-up (the load most bots see).
            rate = float(cmd.get("rate", 20.0))
            for k in range(users * messages):
                await trio.sleep_until(t_first + k / rate)
                u, i = k % users, k // users
                text = TEXT.format(tag=tag, user=u, i=i)
                req_id, t0 = await _push(fake, text, f"{users_tag}-u{u:04d}", bot_id)
                sent.append((req_id, t0, text))
            await _all_finished(fake, sent, progress)
        else:
            raise ValueError(f"unknown mode {mode!r}")
    t_end = trio.current_time()
    result = _summary(fake, sent, t_first=t_first, t_end=t_end)
    result["unsent"] = users * messages - len(sent)
    result["loadgen_cpu"] = time.process_time() - cpu0
    return result


async def cmd_steady(fake: BenchFake, cmd: dict[str, Any], cmd_id: int) -> dict[str, Any]:
    """``rate`` messages per second per bot for ``seconds``, each from a new user."""
    bot_ids: list[str] = list(cmd["bot_ids"])
    rate, seconds = float(cmd["rate"]), float(cmd["seconds"])
    timeout, tag = float(cmd.get("timeout", seconds + 30.0)), str(cmd.get("tag", "s"))
    ticks = max(1, round(rate * seconds))
    total = ticks * len(bot_ids)
    progress = _Progress(cmd_id, total)
    sent: list[tuple[str, float, str]] = []
    cpu0 = time.process_time()
    t_first = trio.current_time()
    step = 1.0 / rate / len(bot_ids)  # the bots' messages spread evenly over each period
    with trio.move_on_after(timeout):
        n = 0
        for k in range(ticks):
            for b, bot_id in enumerate(bot_ids):
                await trio.sleep_until(t_first + n * step)
                n += 1
                text = TEXT.format(tag=tag, user=b, i=k)
                req_id, t0 = await _push(fake, text, f"{tag}-b{b}-k{k}", bot_id)
                sent.append((req_id, t0, text))
        await _all_finished(fake, sent, progress)
    result = _summary(fake, sent, t_first=t_first, t_end=trio.current_time())
    result["unsent"] = total - len(sent)
    result["loadgen_cpu"] = time.process_time() - cpu0
    return result


class _Held:
    def __init__(self) -> None:
        self.sent: list[tuple[str, float, str]] = []


async def cmd_hold(
    fake: BenchFake, held: _Held, cmd: dict[str, Any], cmd_id: int
) -> dict[str, Any]:
    bot_id, count = cmd["bot_id"], int(cmd["count"])
    timeout, tag = float(cmd.get("timeout", 120.0)), str(cmd.get("tag", "h"))
    progress = _Progress(cmd_id, count)
    fake.first_frames_seen = 0
    fake.first_frame_waiters = count
    fake.first_frames_event = trio.Event()
    t_first = trio.current_time()
    pushed_at = t_first
    with trio.move_on_after(timeout):
        for i in range(count):
            text = TEXT.format(tag=tag, user=i, i=0)
            req_id, t0 = await _push(fake, text, f"{tag}-u{i:05d}", bot_id)
            held.sent.append((req_id, t0, text))
            progress.tick()
        pushed_at = trio.current_time()
        await fake.first_frames_event.wait()
    return {
        "pushed": len(held.sent),
        "streams_open": fake.first_frames_seen,
        "push_seconds": pushed_at - t_first,
        "seconds": trio.current_time() - t_first,
    }


async def cmd_release(
    fake: BenchFake, held: _Held, cmd: dict[str, Any], cmd_id: int
) -> dict[str, Any]:
    bot_id, timeout = cmd["bot_id"], float(cmd.get("timeout", 120.0))
    progress = _Progress(cmd_id, len(held.sent))
    t_first = trio.current_time()
    with trio.move_on_after(timeout):
        await fake.send_text("/release", userid="releaser", bot_id=bot_id)
        await _all_finished(fake, held.sent, progress)
    result = _summary(fake, held.sent, t_first=t_first, t_end=trio.current_time())
    result.pop("latencies")
    result["release_seconds"] = trio.current_time() - t_first
    held.sent.clear()
    return result


async def _lines(stream: trio.lowlevel.FdStream) -> Any:
    buf = b""
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


async def main(bots: dict[str, str], host: str) -> None:
    fake = BenchFake(bots=bots, record=False, rate_limit=False, idle_timeout=None)
    held = _Held()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve_fake_openws(fake, host=host, task_status=task_status)
        )
        _emit({"event": "ready", "url": fake.url, "pid": os.getpid()})
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        async for cmd in _lines(stdin):
            cmd_id, op = cmd.get("id", 0), cmd.get("op")
            try:
                if op == "quit":
                    _emit({"id": cmd_id, "result": {}})
                    break
                if op == "wait_subscribed":
                    with trio.fail_after(float(cmd.get("timeout", 30.0))):
                        await fake.wait_subscribed(cmd["bot_id"], count=int(cmd.get("count", 1)))
                    result: dict[str, Any] = {}
                elif op == "load":
                    result = await cmd_load(fake, cmd, cmd_id)
                elif op == "steady":
                    result = await cmd_steady(fake, cmd, cmd_id)
                elif op == "hold":
                    result = await cmd_hold(fake, held, cmd, cmd_id)
                elif op == "release":
                    result = await cmd_release(fake, held, cmd, cmd_id)
                elif op == "say":
                    with trio.fail_after(float(cmd.get("timeout", 60.0))):
                        cb = await fake.send_text(
                            cmd["text"], userid=cmd.get("user", "operator"), bot_id=cmd["bot_id"]
                        )
                        r = await _finished(fake, cb.req_id)
                    result = {"content": r.content}
                elif op == "reset":
                    fake.reset()
                    result = {}
                elif op == "stats":
                    st = fake.statistics()
                    result = {
                        "live_connections": st.live_connections,
                        "subscribes_ok": st.subscribes_ok,
                        "frames_in": st.frames_in,
                        "frames_out": st.frames_out,
                        "acks_by_errcode": {str(k): v for k, v in st.acks_by_errcode.items()},
                    }
                else:
                    raise ValueError(f"unknown op {op!r}")
                _emit({"id": cmd_id, "result": result})
            except (trio.TooSlowError, NotConnected, KeyError, ValueError) as exc:
                _emit({"id": cmd_id, "error": f"{type(exc).__name__}: {exc}"})
        nursery.cancel_scope.cancel()


def _parse_bots(spec: str) -> dict[str, str]:
    bots: dict[str, str] = {}
    for item in spec.split(","):
        bot_id, _, secret = item.partition(":")
        if not bot_id or not secret:
            raise SystemExit(f"--bots: {item!r} is not ID:SECRET")
        bots[bot_id] = secret
    return bots


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", required=True, help="ID:SECRET[,ID:SECRET...]")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    try:
        trio.run(main, _parse_bots(args.bots), args.host)
    except BaseException as exc:  # stopped with SIGINT by the benchmark: exit quietly
        if not _procs.interrupted(exc):
            raise
