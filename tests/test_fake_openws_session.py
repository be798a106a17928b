"""The fake WeCom long-connection server (wecom_actors.testing) from the outside: session.

Subscribe, refusal, not subscribed, heartbeat, missed pongs, dropped socket, kick-out.

Raw client and helpers live in fake_openws_helpers.py; see its docstring for the ground rules.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed

from wecom_actors.testing import NotConnected, open_fake_wecom

from .fake_openws_helpers import BOT, OK_ACK, SECRET, connect, md, push_text

# --- subscribe, refusal, not subscribed, heartbeat ------------------------------


async def test_subscribe_ok_accepts_extra_keys_and_pushes_nothing_before_the_ack() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake, subscribe=False) as c:
            with pytest.raises(NotConnected):
                await fake.send_text("too early")
            ack = await c.request(
                "aibot_subscribe",
                {"bot_id": BOT, "secret": SECRET, "scene": 1, "plug_version": "1.0"},
                req_id="aibot_subscribe_1",
            )
            assert ack == {"headers": {"req_id": "aibot_subscribe_1"}, **OK_ACK}
            await fake.wait_subscribed()
            assert fake.is_subscribed()
            await push_text(fake, c)
            outgoing = [f for f in fake.frames if f.direction == "out"]
            assert [f.cmd for f in outgoing] == [None, "aibot_msg_callback"]
            assert fake.statistics().subscribes_ok == 1


@pytest.mark.parametrize(("bot_id", "secret"), [(BOT, "wrong"), ("other-bot", SECRET)])
async def test_subscribe_refused_then_closed(bot_id: str, secret: str) -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake, subscribe=False) as c:
            ack = await c.subscribe(bot_id, secret)
            assert (ack["errcode"], ack["errmsg"]) == (600041, "invalid secret")
            with pytest.raises(ConnectionClosed):
                await c.recv()
            assert fake.statistics().subscribes_refused == 1
            assert not fake.is_subscribed()


@pytest.mark.parametrize("cmd", ["aibot_send_msg", "ping", "aibot_respond_msg", "nonsense"])
async def test_command_before_subscribe_is_846609(cmd: str) -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake, subscribe=False) as c:
            ack = await c.request(cmd, md("x", "U"), req_id="R1")
            assert ack == {
                "headers": {"req_id": "R1"},
                "errcode": 846609,
                "errmsg": "aibot websocket not subscribed",
            }
            assert (await c.subscribe())["errcode"] == 0  # the socket is still usable


async def test_heartbeat_and_idle_timeout(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom(idle_timeout=90) as fake, connect(fake) as c:
            for _ in range(10):  # a ping every 30 s keeps the connection open
                await trio.sleep(30)
                assert await c.request("ping", req_id="ping_x") == {
                    "headers": {"req_id": "ping_x"},
                    **OK_ACK,
                }
            last = trio.current_time()
            with pytest.raises(ConnectionClosed) as exc:
                await c.recv()
            assert trio.current_time() - last == pytest.approx(90)
            assert exc.value.reason.code == 1000
            await fake.wait_until(lambda: fake.statistics().live_connections == 0)


async def test_idle_timeout_none_never_closes(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(10_000):
        async with open_fake_wecom(idle_timeout=None) as fake, connect(fake) as c:
            await c.expect_silence(3600)
            assert (await c.request("ping"))["errcode"] == 0


# --- missed pongs ------------------------------------------------------------------


async def test_drop_acks_swallows_ping_acks_only(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom() as fake, connect(fake) as c:
            fake.faults.drop_acks()  # default: every ping, forever
            await c.send("ping")
            await c.send("ping")
            await c.expect_silence(30)
            init = {"type": "file", "filename": "a", "total_size": 1, "total_chunks": 1}
            assert (await c.request("aibot_upload_media_init", init))["errcode"] == 0
            fake.faults.clear()
            assert (await c.request("ping"))["errcode"] == 0
            fake.faults.drop_acks(count=1)
            await c.send("ping")
            assert (await c.request("ping", req_id="second"))["errcode"] == 0


# --- dropped socket, kick-out -------------------------------------------------


@pytest.mark.parametrize("stale", [True, False])
async def test_drop_mid_stream_then_stale_req_id(
    stale: bool, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(100):
        async with open_fake_wecom(stale_req_ids_after_reconnect=stale) as fake:
            async with connect(fake) as a:
                cb1 = await push_text(fake, a, userid="U")
                assert (await a.stream(cb1, "ST1", "He"))["errcode"] == 0
                assert fake.faults.drop() == 1
                with pytest.raises(ConnectionClosed) as exc:
                    await a.recv()
                assert exc.value.reason.code == 1006  # no close handshake
            await fake.wait_until(lambda: fake.statistics().live_connections == 0)
            async with connect(fake) as b:
                await fake.wait_subscribed(count=2)
                ack = await b.stream(cb1, "ST1", "Hello", finish=True)
                assert ack["errcode"] == (846605 if stale else 0)
                await b.expect_silence(10)  # CB1 is not redelivered
                view = fake.stream(cb1)
                assert view is not None and view.rejected_frames == (1 if stale else 0)


async def test_second_subscriber_kicks_the_first() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as a:
            async with connect(fake) as b:
                frame = await a.recv()
                assert frame["cmd"] == "aibot_event_callback"
                body = frame["body"]
                assert body["event"] == {"eventtype": "disconnected_event"}
                assert body["aibotid"] == BOT and isinstance(body["create_time"], int)
                assert "from" not in body and "chattype" not in body
                with pytest.raises(ConnectionClosed):
                    await a.recv()
                cb = await fake.send_text("to b")
                assert (await b.recv())["headers"]["req_id"] == cb.req_id
                stats = fake.statistics()
                assert (stats.subscribes_ok, stats.connections_total) == (2, 2)
                assert fake.kick_count() == 1


async def test_kick_without_close_leaves_a_half_alive_socket() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as a:
            cb = await push_text(fake, a, userid="U")
            assert fake.kick_count() == 0
            assert fake.faults.kick(close=False) == 1
            assert (await a.recv())["body"]["event"]["eventtype"] == "disconnected_event"
            assert fake.kick_count() == 1
            assert (await a.request("ping"))["errcode"] == 0
            assert (await a.stream(cb, "S", "x"))["errcode"] == 846609
            with pytest.raises(NotConnected):
                await fake.send_text("nobody listens")
            async with connect(fake) as b:
                await fake.wait_subscribed(count=2)
                await push_text(fake, b)
