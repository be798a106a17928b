"""Fidelity of the bundled fakes: what they record, how they close, the ids they hand out,
the connection views and timeouts tests rely on, a real kick-out, one argument naming."""

from __future__ import annotations

import base64
import re
import ssl
from typing import Any

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, open_websocket_url

from wecom_actors.testing import DEFAULT_CLOSE_CODES, FakeTLS, FakeWeCom, open_fake_wecom

from .fake_openws_helpers import BOT, RawClient, connect, push_text

MSGID = re.compile(r"CAIQ[A-Za-z0-9+/]+={0,2}")


async def test_an_ack_cut_off_by_a_drop_is_not_recorded_as_delivered() -> None:
    # The stream is finished (the fake applied the frame) before its ack is written: a test that
    # waits for that and drops the connection at once kills the ack. It must not show delivered.
    with trio.fail_after(10):
        async with open_fake_wecom() as fake:
            async with connect(fake) as c:
                cb = await push_text(fake, c, userid="U")
                body = {"msgtype": "stream", "stream": {"id": "s1", "finish": True, "content": "x"}}
                await c.send("aibot_respond_msg", body, req_id=cb)
                await fake.wait_stream_finished(cb)
                assert fake.faults.drop() == 1
                with pytest.raises(ConnectionClosed):
                    while True:
                        await c.recv()
            (conn,) = [fake.connection(i) for i in (1,)]
            await fake.wait_closed(conn.id)  # type: ignore[union-attr]
            acks = [f for f in fake.frames if f.direction == "out" and f.req_id == cb and f.cmd is None]
            assert not any(f.delivered for f in acks), acks
            assert fake.statistics().acks_by_errcode == {0: 1}  # the subscribe ack only


async def test_delivered_frames_are_recorded_after_they_are_written() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            before = len(fake.frames)
            await push_text(fake, c)
            out = [f for f in fake.frames[before:] if f.direction == "out"]
            assert [(f.cmd, f.delivered) for f in out] == [("aibot_msg_callback", True)]


@pytest.mark.parametrize("code", [1000, 1008, 4001])
async def test_refused_subscribe_closes_with_the_configured_code(code: int) -> None:
    with trio.fail_after(10):
        async with open_fake_wecom(close_codes={"subscribe_refused": code}) as fake:
            async with connect(fake, subscribe=False) as c:
                assert (await c.subscribe(BOT, "wrong"))["errcode"] == 600041
                with pytest.raises(ConnectionClosed) as info:
                    await c.recv()
                assert info.value.reason.code == code
            (conn_id,) = [i for i in range(1, 5) if fake.connection(i) is not None]
            view = await fake.wait_closed(conn_id)
            assert (view.close_code, view.closed_by, view.subscribed) == (code, "server", False)


async def test_idle_timeout_uses_its_close_code(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_wecom(idle_timeout=20, close_codes={"idle_timeout": 4100}) as fake:
        async with connect(fake) as c:
            (conn,) = fake.connections
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await c.recv()
            assert info.value.reason.code == 4100
        view = await fake.wait_closed(conn.id)
        assert (view.close_code, view.close_reason, view.closed_by) == (4100, "idle timeout", "server")


def test_close_codes_are_checked() -> None:
    assert DEFAULT_CLOSE_CODES == {"subscribe_refused": 1000, "kicked": 1000, "idle_timeout": 1000}
    with pytest.raises(ValueError, match="unknown close causes"):
        FakeWeCom(close_codes={"bored": 1000})
    with pytest.raises(ValueError, match="RFC 6455"):
        FakeWeCom(close_codes={"kicked": 1006})


async def test_connection_views_and_a_client_close() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake:
            assert fake.connections == [] and fake.subscribe_count() == 0
            async with connect(fake) as c:
                (conn,) = fake.connections
                assert (conn.bot_id, conn.subscribed, conn.closed) == (BOT, True, False)
                assert fake.live_connection() == conn
                assert fake.subscribe_count() == 1
                await c.ws.aclose(4321, "bye")
            view = await fake.wait_closed(conn.id)
            assert (view.closed, view.close_code, view.closed_by) == (True, 4321, "client")
            assert fake.connections == [] and fake.live_connection() is None
            with pytest.raises(KeyError):
                await fake.wait_closed(999)


async def test_every_wait_times_out(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_wecom() as fake:
        with pytest.raises(trio.TooSlowError):
            await fake.wait_subscribed(timeout=3)
        with pytest.raises(trio.TooSlowError):
            await fake.wait_stream_finished("nope", timeout=3)
        with pytest.raises(trio.TooSlowError):
            await fake.wait_until(lambda: False, timeout=3)
        assert trio.current_time() < 30


async def test_msgids_look_like_wecom_ones() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            ids = set()
            for _ in range(20):
                cb = await fake.send_text("x")
                await c.recv()
                assert MSGID.fullmatch(cb.msgid), cb.msgid
                assert base64.b64decode(cb.msgid, validate=True)[:3] == b"\x08\x02\x10"
                ids.add(cb.msgid)
            assert len(ids) == 20


async def test_a_real_second_subscriber_kicks_the_bot() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom(close_codes={"kicked": 4409}) as fake, connect(fake) as c:
            (mine,) = fake.connections
            intruder = await fake.faults.kick_by_second_subscriber()
            assert intruder != mine.id
            event = await c.recv()
            assert event["cmd"] == "aibot_event_callback"
            assert event["body"]["event"] == {"eventtype": "disconnected_event"}
            assert MSGID.fullmatch(event["body"]["msgid"])
            with pytest.raises(ConnectionClosed) as info:
                await c.recv()
            assert info.value.reason.code == 4409
            assert (await fake.wait_closed(mine.id)).replaced
            assert fake.subscribe_count() == 2
            assert fake.live_connection().id == intruder  # type: ignore[union-attr]
            # The bot coming back replaces the intruder in turn.
            async with connect(fake) as again:
                assert (await fake.wait_closed(intruder)).replaced
                await push_text(fake, again)


async def test_old_argument_names_still_work_with_a_warning() -> None:
    with trio.fail_after(10):
        async with open_fake_wecom() as fake, connect(fake) as c:
            with pytest.warns(DeprecationWarning, match="use userid="):
                await fake.send_text("hi", user="U", chatid="G")
            frame = await c.recv()
            assert frame["body"]["from"] == {"userid": "U"} and frame["body"]["chatid"] == "G"
            with pytest.raises(TypeError, match="pass chatid= only"):
                await fake.send_text("hi", chat="G", chatid="G")


async def test_a_wss_listener_with_a_throwaway_ca(tmp_path: Any) -> None:
    tls = FakeTLS.create()
    with trio.fail_after(10):
        async with open_fake_wecom(tls=tls) as fake:
            assert fake.url.startswith("wss://127.0.0.1:")
            async with open_websocket_url(fake.url, ssl_context=fake.client_ssl_context()) as ws:
                c = RawClient(ws)
                assert (await c.subscribe())["errcode"] == 0
                # the real kick-out works over TLS too
                await fake.faults.kick_by_second_subscriber()
                assert (await c.recv())["body"]["event"]["eventtype"] == "disconnected_event"
            # a client that does not trust the throwaway CA fails the TLS handshake
            port = int(fake.url.rsplit(":", 1)[1])
            stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=ssl.create_default_context())
            with pytest.raises(trio.BrokenResourceError) as info:
                await stream.do_handshake()
            assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert tls.write_ca(tmp_path / "ca.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
