"""The supervised connection over an in-memory WeCom, in exact virtual time."""

from __future__ import annotations

import random

import pytest
import trio
import trio.lowlevel
import trio.testing

from wecom_actors import AuthError, BotConfig, KickedOut, serve_bot
from wecom_actors.longconn.supervisor import Backoff

from .memws import MemWeCom, Peer


def config(**changes: object) -> BotConfig:
    base = BotConfig(mode="long-connection", bot_id="B", bot_secret="S", ws_url="ws://mem", ws_allow_insecure=True, reconnect_jitter=0.0)
    return base.replace(**changes)


async def idle_handler(turn: object) -> None:
    return None


async def start(nursery: trio.Nursery, wecom: MemWeCom, cfg: BotConfig, handler=idle_handler):  # type: ignore[no-untyped-def]
    async def run(task_status: trio.TaskStatus[object]) -> None:
        await serve_bot(cfg, handler, task_status=task_status, transport_factory=wecom.factory, rng=random.Random(1))

    return await nursery.start(run)


async def serve_pings(peer: Peer, log: list[float] | None = None, answer: bool = True) -> None:
    """Ack every ping (or only record it); stop when the client goes away."""
    try:
        while True:
            frame = await peer.recv()
            if frame.get("cmd") == "ping":
                if log is not None:
                    log.append(trio.current_time())
                if answer:
                    await peer.ack(frame["headers"]["req_id"])
    except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
        return


def test_backoff_schedule_doubles_to_the_cap_and_resets() -> None:
    b = Backoff(1.0, 30.0, 0.0, random.Random(0))
    assert [b.next() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    b.reset()
    assert b.next() == 1
    jittered = Backoff(1.0, 30.0, 0.2, random.Random(0))
    values = [jittered.next() for _ in range(6)]
    for got, base in zip(values, [1, 2, 4, 8, 16, 30], strict=True):
        assert base * 0.8 <= got <= base * 1.2


async def test_start_returns_only_after_subscribe(autojump_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            started: list[object] = []
            ready = trio.Event()

            async def starter() -> None:
                started.append(await start(nursery, wecom, config()))
                ready.set()

            nursery.start_soon(starter)
            peer = await wecom.accept()
            frame = await peer.recv()
            assert frame == {"cmd": "aibot_subscribe", "headers": {"req_id": frame["headers"]["req_id"]}, "body": {"bot_id": "B", "secret": "S"}}
            await trio.sleep(3)
            assert started == []  # no ack yet: serve_bot has not returned
            await peer.ack(frame["headers"]["req_id"])
            await ready.wait()
            assert started[0].statistics().state == "subscribed"  # type: ignore[attr-defined]
            nursery.cancel_scope.cancel()


async def test_heartbeat_cadence_is_exact(autojump_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()
    pings: list[float] = []
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(start, nursery, wecom, config(heartbeat_interval=30))
            peer = await wecom.accept_subscribed()
            t0 = trio.current_time()
            nursery.start_soon(serve_pings, peer, pings)
            await trio.sleep(125)
            assert [round(t - t0, 6) for t in pings] == [30, 60, 90, 120]
            nursery.cancel_scope.cancel()


async def test_half_open_detected_within_two_intervals_plus_timeout(autojump_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            handle = await _start_subscribed(nursery, wecom, config(heartbeat_interval=30, ack_timeout=5))
            first = wecom.peers[0]
            stalled_at = trio.current_time()
            nursery.start_soon(serve_pings, first, None, False)  # half-open: reads, never answers
            second = await wecom.accept_subscribed()
            detected = wecom.dial_times[1] - 1.0  # minus the 1 s backoff before redialing
            assert detected - stalled_at == 2 * 30 + 5
            nursery.start_soon(serve_pings, second)
            await trio.sleep(1)
            stats = handle.statistics()
            assert (stats.state, stats.reconnects, stats.pings_missed) == ("subscribed", 1, 2)
            nursery.cancel_scope.cancel()


async def _start_subscribed(nursery: trio.Nursery, wecom: MemWeCom, cfg: BotConfig, handler=idle_handler):  # type: ignore[no-untyped-def]
    result: list[object] = []

    async def starter() -> None:
        result.append(await start(nursery, wecom, cfg, handler))

    nursery.start_soon(starter)
    await wecom.accept_subscribed()
    while not result:
        await trio.lowlevel.checkpoint()
    return result[0]


async def test_reconnect_backoff_schedule_and_reset_after_subscribe(autojump_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            await _start_subscribed(nursery, wecom, config())
            wecom.peers[0].close()  # dropped
            for _ in range(4):  # four dials that die before subscribing
                peer = await wecom.accept()
                await peer.recv()
                peer.close()
            peer = await wecom.accept_subscribed()
            peer.close()
            await wecom.accept_subscribed()
            gaps = [round(b - a, 6) for a, b in zip(wecom.dial_times, wecom.dial_times[1:], strict=False)]
            # 1, 2, 4, 8 while failing; 16 before the dial that subscribed; reset to 1 after it.
            assert gaps == [1, 2, 4, 8, 16, 1]
            nursery.cancel_scope.cancel()


async def test_auth_refused_stops_after_bounded_attempts(autojump_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()

    async def refuse_all() -> None:
        while True:
            peer = await wecom.accept()
            frame = await peer.recv()
            await peer.ack(frame["headers"]["req_id"], 600041, "invalid secret")

    with trio.fail_after(600):
        with pytest.RaisesGroup(AuthError):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(refuse_all)
                await start(nursery, wecom, config(auth_max_attempts=5))
    assert len(wecom.dial_times) == 5
    gaps = [round(b - a, 6) for a, b in zip(wecom.dial_times, wecom.dial_times[1:], strict=False)]
    assert gaps == [1, 2, 4, 8]


async def test_kicked_out_stops_without_reconnecting(autojump_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()
    with trio.fail_after(600):
        with pytest.RaisesGroup(KickedOut):
            async with trio.open_nursery() as nursery:
                await _start_subscribed(nursery, wecom, config())
                peer = wecom.peers[0]
                await peer.send(
                    {
                        "cmd": "aibot_event_callback",
                        "headers": {"req_id": "EVK"},
                        "body": {"msgid": "M5", "aibotid": "B", "msgtype": "event", "event": {"eventtype": "disconnected_event"}},
                    }
                )
                await trio.sleep(100)  # the socket stays open on the server side; the bot leaves
    assert len(wecom.dial_times) == 1


async def test_junk_frames_are_skipped(mock_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            handle = await _start_subscribed(nursery, wecom, config())
            peer = wecom.peers[0]
            for junk in ("not json", "[1,2]", '{"cmd":"aibot_msg_callback","headers":{"req_id":"x"},"body":{"text":5,"msgtype":"text"}}', '{"cmd":"mystery","headers":{}}', "\x00\x01"):
                await peer.send(junk)
            await trio.testing.wait_all_tasks_blocked()
            stats = handle.statistics()
            assert (stats.junk_frames, stats.reconnects, stats.state) == (4, 0, "subscribed")
            nursery.cancel_scope.cancel()


async def test_cancelling_the_callers_scope_leaves_nothing_running(mock_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()
    before = len(trio.lowlevel.current_root_task().child_nurseries)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await _start_subscribed(nursery, wecom, config())
            nursery.cancel_scope.cancel()
    assert len(trio.lowlevel.current_root_task().child_nurseries) == before
    # The transport context exited: the peer side is closed.
    with pytest.raises((trio.ClosedResourceError, trio.BrokenResourceError)):
        await wecom.peers[0].to_client.send(b"{}")


async def test_a_siblings_exception_tears_the_bot_down(mock_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()

    class Boom(Exception):
        pass

    with trio.fail_after(60):
        with pytest.RaisesGroup(Boom):
            async with trio.open_nursery() as nursery:
                await _start_subscribed(nursery, wecom, config())
                raise Boom
    # The transport context exited: the peer side is closed.
    with pytest.raises((trio.ClosedResourceError, trio.BrokenResourceError)):
        await wecom.peers[0].to_client.send(b"{}")


async def test_a_lost_ack_on_a_healthy_connection_is_probed_and_the_frame_resent(autojump_clock: trio.testing.MockClock) -> None:
    wecom = MemWeCom()

    async def streamer(turn):  # type: ignore[no-untyped-def]
        async with turn.stream() as s:
            await s.set("hello")

    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            handle = await _start_subscribed(nursery, wecom, config(heartbeat_interval=30, ack_timeout=5), streamer)
            peer = wecom.peers[0]
            await peer.send(
                {
                    "cmd": "aibot_msg_callback",
                    "headers": {"req_id": "CB1"},
                    "body": {"msgid": "M1", "from": {"userid": "u"}, "chattype": "single", "msgtype": "text", "text": {"content": "hi"}},
                }
            )
            first = await peer.recv()
            t0 = trio.current_time()
            assert first["cmd"] == "aibot_respond_msg"  # never acked: the ack is "lost"
            probe = await peer.recv()
            assert probe["cmd"] == "ping" and trio.current_time() - t0 == 5  # probed at once, not at the next tick
            await peer.ack(probe["headers"]["req_id"])
            again = await peer.recv()
            assert again == first  # healthy: the same (idempotent) frame, on the same connection
            await peer.ack("CB1")
            final = await peer.recv()
            assert final["body"]["stream"] == {**first["body"]["stream"], "finish": True}
            await peer.ack("CB1")
            await trio.sleep(1)
            stats = handle.statistics()
            assert (stats.reconnects, stats.replies_failed, stats.request_lanes) == (0, 0, 0)
            nursery.cancel_scope.cancel()
