"""Mailbox habits (post, fill) and the mailbox statistics a running bot reports."""

from __future__ import annotations

import trio
import trio.testing

from wecom_actors import Turn
from wecom_actors.mailbox import fill, post
from wecom_actors.testing import open_fake_wecom

from .fake_bot import bot_config, serve


async def test_post_sends_without_a_schedule_point_while_there_is_room() -> None:
    tx, rx = trio.open_memory_channel[int](2)
    with trio.testing.assert_no_checkpoints():
        await post(tx, 1)
        await post(tx, 2)
    with trio.testing.assert_checkpoints():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(post, tx, 3)  # full: waits for room
            await trio.testing.wait_all_tasks_blocked()
            assert rx.statistics().tasks_waiting_send == 1
            assert fill(rx, []) == [1, 2, 3]  # the waiting sender's message too


def test_fill_takes_what_is_waiting_up_to_the_limit() -> None:
    tx, rx = trio.open_memory_channel[int](10)
    for i in range(5):
        tx.send_nowait(i)
    assert fill(rx, ["first"], limit=4) == ["first", 0, 1, 2]
    assert fill(rx, []) == [3, 4]
    assert fill(rx, []) == []


async def echo(turn: Turn) -> None:
    await turn.reply_text(turn.text)


async def test_statistics_report_every_mailbox(autojump_clock: trio.testing.MockClock) -> None:
    async with open_fake_wecom() as fake:
        async with trio.open_nursery() as nursery:
            handle = await nursery.start(serve, bot_config(fake), echo)
            for i in range(3):
                cb = await fake.send_text(f"hello {i}")
                await fake.wait_stream_finished(cb.req_id)
            boxes = handle.statistics().mailboxes
            assert set(boxes) == {"correlator", "renderer", "router", "session_streams"}
            assert boxes["router"].messages == 3 and boxes["router"].batches >= 1
            assert boxes["renderer"].messages >= 3  # a final frame per reply, at least
            # Per reply: its open and finish ops and the final frame's settlement, at least.
            assert boxes["session_streams"].messages >= 9
            assert boxes["correlator"].messages >= 6  # 3 final frames and their acks, at least
            for box in boxes.values():
                assert box.buffer_used == 0 and box.buffer_max >= 1000 and box.tasks_waiting_send == 0
            assert boxes["correlator"].tasks_waiting_receive == 1  # the Correlator waits for work
            nursery.cancel_scope.cancel()
