"""The fake WeCom long-connection server (wecom_actors.testing) from the outside: views.

Statistics, recording, wait_until, multiple bots and serving.

Raw client and helpers live in fake_openws_helpers.py; see its docstring for the ground rules.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio_websocket import open_websocket_url

from wecom_actors.testing import FakeWeCom, open_fake_wecom, serve_fake_openws

from .fake_openws_helpers import RawClient, connect, push_text

# --- views, statistics, multiple bots, serving -----------------------------------------------------


async def test_statistics_and_recording() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            await c.stream(cb, "S", "x", finish=True)
            await c.request("ping")
            stats = fake.statistics()
            assert stats.connections_total == stats.live_connections == 1
            assert (stats.frames_in, stats.frames_out) == (3, 4)
            assert stats.acks_by_errcode == {0: 3} and stats.callbacks_pushed == 1
            assert [(f.direction, f.cmd) for f in fake.frames] == [
                ("in", "aibot_subscribe"),
                ("out", None),
                ("out", "aibot_msg_callback"),
                ("in", "aibot_respond_msg"),
                ("out", None),
                ("in", "ping"),
                ("out", None),
            ]
            ack = fake.frames[4]
            assert (ack.req_id, ack.errcode, ack.body) == (cb, 0, None)
            with pytest.raises(AttributeError):
                stats.frames_in = 0  # type: ignore[misc]


async def test_record_false_keeps_counting() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom(record=False) as fake, connect(fake) as c:
            await c.request("ping")
            assert fake.frames == []
            assert fake.statistics().frames_in == 2


async def test_wait_until_rechecks_on_state_changes() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            seen: list[str] = []

            async def watcher() -> None:
                await fake.wait_until(lambda: len(fake.conversation("alice")) == 1)
                seen.append("bubble")
                view = await fake.wait_stream_finished(cb)
                seen.append(view.content)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher)
                await trio.testing.wait_all_tasks_blocked()
                assert seen == []
                await c.stream(cb, "S", "a")
                await c.stream(cb, "S", "done", finish=True)
            assert seen == ["bubble", "done"]


async def test_two_bots_are_independent() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom(bots={"b1": "s1", "b2": "s2"}) as fake:
            assert (fake.bot_id, fake.secret) == ("b1", "s1")
            async with open_websocket_url(fake.url) as ws1, open_websocket_url(fake.url) as ws2:
                c1, c2 = RawClient(ws1), RawClient(ws2)
                assert (await c1.subscribe("b1", "s1"))["errcode"] == 0
                assert (await c2.subscribe("b2", "s2"))["errcode"] == 0
                await c1.expect_silence(0.1)  # no kick across bots
                cb = await fake.send_text("for b2", bot_id="b2")
                frame = await c2.recv()
                assert frame["body"]["aibotid"] == "b2"
                assert (await c1.stream(frame["headers"]["req_id"], "S", "x"))["errcode"] == 846605
                assert (await c2.stream(cb.req_id, "S", "x", True))["errcode"] == 0
                assert fake.conversation("alice", bot_id="b2")[0].content == "x"
                assert fake.conversation("alice") == []


async def test_serve_fake_openws_in_a_nursery_and_wrong_path() -> None:
    with trio.fail_after(10):
        fake = FakeWeCom(seed=1)
        async with trio.open_nursery() as nursery:
            assert await nursery.start(serve_fake_openws, fake) is fake
            assert fake.url.startswith("ws://127.0.0.1:")
            assert fake.media_base_url.startswith("http://127.0.0.1:")
            with pytest.raises(RuntimeError):
                await nursery.start(serve_fake_openws, fake)
            with pytest.raises(Exception, match="404"):
                async with open_websocket_url(fake.url + "/cgi-bin/wsagent?access_token=x"):
                    pass  # pragma: no cover
            nursery.cancel_scope.cancel()


async def test_misbehaving_clients_do_not_stop_the_fake() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake:
            host, port = fake.url.removeprefix("ws://").split(":")
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.aclose()  # connect and vanish
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # no upgrade
            async with connect(fake) as c:
                assert (await c.request("ping"))["errcode"] == 0
                await c.ws.aclose()
            await stream.aclose()
            async with connect(fake) as c:
                assert (await c.request("ping"))["errcode"] == 0
