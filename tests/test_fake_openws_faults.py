"""The fake WeCom long-connection server (wecom_actors.testing) from the outside: faults.

Junk frames both ways and the fault injectors.

Raw client and helpers live in fake_openws_helpers.py; see its docstring for the ground rules.
"""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, DisconnectionTimeout

from wecom_actors.testing import NotConnected, open_fake_wecom

from .fake_openws_helpers import connect, md, push_text

# --- junk both ways --------------------------------------------------------------------------------


async def test_junk_and_oversized_frames_to_the_client() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            assert fake.faults.send_junk("not json \x01") == 1
            assert await c.ws.get_message() == "not json \x01"
            fake.faults.send_oversized(200_000)
            message = await c.ws.get_message()
            assert len(message) == 200_000 and json.loads(message)["cmd"] == "fake_oversized"
            assert (await c.request("ping"))["errcode"] == 0


async def test_client_junk_is_ignored_and_unknown_cmd_answered() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            await c.ws.send_message("this is not json")
            await c.ws.send_message("[1, 2]")
            await c.ws.send_message('{"headers": {"req_id": "no-cmd"}}')
            ack = await c.request("aibot_fly_to_moon", {}, req_id="U1")
            assert (ack["errcode"], ack["errmsg"]) == (
                40058,
                "invalid parameter: unknown cmd 'aibot_fly_to_moon'",
            )
            junk = [f for f in fake.frames if f.direction == "in" and f.cmd is None]
            assert [f.text for f in junk] == [
                "this is not json",
                "[1, 2]",
                '{"headers": {"req_id": "no-cmd"}}',
            ]
            assert junk[0].data is None and junk[2].data == {"headers": {"req_id": "no-cmd"}}
            assert (await c.request("ping"))["errcode"] == 0


# --- fault injectors ------------------------------------------------------------------------------


async def test_fault_close_with_code() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            assert fake.faults.close(4001, reason="bye") == 1
            with pytest.raises(ConnectionClosed) as exc:
                await c.recv()
            assert (exc.value.reason.code, exc.value.reason.reason) == (4001, "bye")
            with pytest.raises(NotConnected):
                await fake.send_text("x")


async def test_fault_stall_is_half_open(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(1000):
        async with open_fake_wecom(idle_timeout=30) as fake:
            # The client's own close handshake times out too: nothing comes back.
            with pytest.raises(DisconnectionTimeout):
                async with connect(fake) as a:
                    assert fake.faults.stall() == 1
                    await a.send("ping")
                    await fake.send_text("lost")  # pushed into the void
                    await a.expect_silence(300)  # no ack, no idle close either
                    assert fake.frames[-1].delivered is False
                    assert fake.statistics().live_connections == 1
                    async with connect(fake) as b:  # a new connection is served normally
                        await fake.wait_subscribed(count=2)
                        assert (await b.request("ping"))["errcode"] == 0
                        await push_text(fake, b)
                        await a.expect_silence(20)  # replaced, yet not closed by the fake
                        assert fake.statistics().live_connections == 2
            await fake.wait_until(lambda: fake.statistics().live_connections == 0)


async def test_fault_ack_errors_are_not_applied() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c, userid="U")
            fake.faults.ack_errors(846609, cmd="aibot_send_msg", count=2, errmsg="boom")
            assert (await c.request("ping"))["errcode"] == 0
            assert (await c.stream(cb, "S", "a"))["errcode"] == 0
            for _ in range(2):
                ack = await c.request("aibot_send_msg", md("p", "U"))
                assert (ack["errcode"], ack["errmsg"]) == (846609, "boom")
            assert (await c.request("aibot_send_msg", md("p", "U")))["errcode"] == 0
            fake.faults.ack_errors(6000)  # any command but ping and subscribe
            assert (await c.request("ping"))["errcode"] == 0
            assert (await c.stream(cb, "S", "ab"))["errcode"] == 6000
            view = fake.stream(cb)
            assert view is not None and (view.content, view.rejected_frames) == ("a", 1)
            assert [b.kind for b in fake.conversation("U")] == ["stream", "markdown"]


async def test_fault_delay_acks(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(100):
        async with open_fake_wecom() as fake, connect(fake) as c:
            cb = await push_text(fake, c)
            fake.faults.delay_acks(3.0, cmd="aibot_respond_msg")
            start = trio.current_time()
            await c.send("aibot_respond_msg", md("one"), req_id=cb)
            await c.send("aibot_respond_msg", md("two"), req_id=cb)
            assert (await c.recv())["errcode"] == 6000
            assert (await c.recv())["errcode"] == 0
            assert trio.current_time() - start == pytest.approx(3.0)
            assert (await c.reply(cb, md("three")))["errcode"] == 0
            assert trio.current_time() - start == pytest.approx(3.0)  # count=1: back to normal
            assert [b.content for b in fake.conversation("alice")] == ["one", "three"]


async def test_fault_refuse_auth() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake:
            fake.faults.refuse_auth(count=1)
            async with connect(fake, subscribe=False) as c:
                assert (await c.subscribe())["errcode"] == 600041
                with pytest.raises(ConnectionClosed):
                    await c.recv()
            async with connect(fake) as c:
                assert fake.is_subscribed()
            fake.faults.refuse_auth(errcode=12345)
            for _ in range(2):
                async with connect(fake, subscribe=False) as c:
                    assert (await c.subscribe())["errcode"] == 12345
            assert fake.statistics().subscribes_refused == 3
