"""The per-bot figures an operator scrapes: frames sent, acks by errcode, last-ack age, replies
sent, messages by type and stream window cuts, in statistics(), /metrics and /readyz."""

from __future__ import annotations

import httpx
import trio
import trio.testing

from wecom_actors import FleetConfig, FleetHandle, serve_fleet
from wecom_actors.testing import open_fake_wecom

from .fake_bot import bot_config
from .test_fleet import free_port, metrics_of


async def test_traffic_shows_in_statistics_metrics_and_readyz(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_wecom() as fake, trio.open_nursery() as nursery:
        config = bot_config(fake, admin_port=free_port())
        handle: FleetHandle = await nursery.start(serve_fleet, FleetConfig.single(config, "echo", name="b"))
        fake.faults.ack_errors(6000, cmd="aibot_respond_msg", count=1)  # one conflict, then retried
        for n in range(5):
            await fake.wait_stream_finished((await fake.send_text(f"hello {n}", userid=f"u{n}")).req_id)
        await fake.send_enter_chat(userid="newcomer")
        await fake.wait_until(lambda: bool(fake.conversation("newcomer")))
        await trio.testing.wait_all_tasks_blocked()
        await trio.sleep(2)  # the newest ack is now 2 s old

        stats = handle.bots["b"].statistics()
        assert stats.replies_sent == 5 and stats.stream_window_cuts == 0
        assert stats.received_by_type == {"text": 5, "enter_chat": 1}
        assert stats.acks_by_errcode[6000] == 1 and stats.acks_by_errcode[0] >= 5 * 2 + 1
        assert stats.frames_sent >= sum(stats.acks_by_errcode.values())
        assert stats.last_ack_age is not None and 2.0 <= stats.last_ack_age < 3.0

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{handle.admin_port}") as http:
            m = metrics_of((await http.get("/metrics")).text)
            ready = (await http.get("/readyz")).json()
        assert m[("wecom_replies_sent_total", (("bot", "b"),))] == 5
        assert m[("wecom_messages_received_by_type_total", (("bot", "b"), ("type", "text")))] == 5
        assert m[("wecom_acks_total", (("bot", "b"), ("errcode", "6000")))] == 1
        assert m[("wecom_frames_sent_total", (("bot", "b"),))] == stats.frames_sent
        assert m[("wecom_stream_window_cuts_total", (("bot", "b"),))] == 0
        assert 2.0 <= m[("wecom_last_ack_age_seconds", (("bot", "b"),))] < 3.0
        assert 2.0 <= ready["bots"]["b"]["last_ack_age_seconds"] < 3.0
        nursery.cancel_scope.cancel()
