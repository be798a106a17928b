"""ReplyStream and SessionStreams, with a recording channel, in virtual time: coalescing, flush,
final frame retries, stale req_ids, cards once, images on the final frame. The three delivery paths
of the ReplyRenderer: a request posted with its settlement sent back to SessionStreams
(``send_stream_frame``, long connection), a task per frame, and the webhook's ``put_frame``
(frames supersede each other; a frame settles when a poll serves it)."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

from wecom_actors.errors import AckError, ReplyFailed, StaleReply
from wecom_actors.protocol.replies import TemplateCard
from wecom_actors.renderer import Settled
from wecom_actors.sessions import ReplyStream, SessionStreams

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


class Channel:
    """Records frames; each frame takes ``latency`` seconds; ``errors`` are raised in order."""

    def __init__(self, latency: float = 0.01, errors: list[Exception] | None = None) -> None:
        self.latency = latency
        self.errors = list(errors or [])
        self.frames: list[dict[str, object]] = []
        self.fallbacks: list[str] = []

    async def stream_frame(self, stream_id: str, content: str, finish: bool, **kw: object) -> None:
        self.frames.append({"t": trio.current_time(), "content": content, "finish": finish, **kw})
        await trio.sleep(self.latency)
        if self.errors:
            raise self.errors.pop(0)

    async def fallback(self, text: str) -> None:
        self.fallbacks.append(text)


class NowaitChannel(Channel):
    """Frames are posted without a task; the settlement comes back to SessionStreams' mailbox."""

    def __init__(self, nursery: trio.Nursery, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._nursery = nursery

    async def send_stream_frame(self, stream_id: str, content: str, finish: bool, *, reply, token, **kw: object) -> None:  # type: ignore[no-untyped-def]
        async def settle() -> None:
            try:
                await self.stream_frame(stream_id, content, finish, **kw)
            except Exception as exc:
                await reply.send([Settled(token, exc)])
            else:
                await reply.send([Settled(token, None)])

        self._nursery.start_soon(settle)


class PullChannel(Channel):
    """The webhook's delivery: ``put_frame`` takes the frame into a snapshot at once; a final
    frame settles at once, any other when a poll serves it (here from a task after
    ``latency``), posted to SessionStreams' mailbox as the webhook's table does."""

    frames_supersede = True

    def __init__(self, nursery: trio.Nursery, settlements: trio.MemorySendChannel[object], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._nursery = nursery
        self._settlements = settlements

    def put_frame(self, stream_id: str, content: str, finish: bool, *, token, **kw: object) -> Settled | None:  # type: ignore[no-untyped-def]
        self.frames.append({"t": trio.current_time(), "content": content, "finish": finish, **kw})
        error = self.errors.pop(0) if self.errors else None
        if finish:
            return Settled(token, error)

        async def served() -> None:
            await trio.sleep(self.latency)
            await self._settlements.send([Settled(token, error)])

        self._nursery.start_soon(served)
        return None


@pytest.fixture(params=["task-per-frame", "nowait", "webhook-pull"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


async def _run(kind: str, body, **channel_kwargs):  # type: ignore[no-untyped-def]
    streams = SessionStreams()
    async with trio.open_nursery() as nursery:
        await nursery.start(streams.run)
        channel: Channel
        if kind == "webhook-pull":
            channel = PullChannel(nursery, streams.mailbox, **channel_kwargs)
        elif kind == "nowait":
            channel = NowaitChannel(nursery, **channel_kwargs)
        else:
            channel = Channel(**channel_kwargs)
        stream = ReplyStream(channel, "S1", streams, min_interval=0.1)
        await body(stream, channel)
        nursery.cancel_scope.cancel()
    return channel, stream


async def test_rapid_appends_are_coalesced_and_ack_paced(kind: str, autojump_clock: trio.testing.MockClock) -> None:
    async def body(s: ReplyStream, ch: Channel) -> None:
        for i in range(100):
            await s.append(f"{i} ")
            await trio.sleep(0.01)
        await s.finish()

    with trio.fail_after(60):
        ch, _s = await _run(kind, body)
    text = "".join(f"{i} " for i in range(100))
    assert ch.frames[-1]["content"] == text and ch.frames[-1]["finish"] is True
    assert [f["finish"] for f in ch.frames[:-1]] == [False] * (len(ch.frames) - 1)
    times = [f["t"] for f in ch.frames[:-1]]
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(times))  # <= 10 frames/s
    assert 5 <= len(ch.frames) <= 12
    assert all(text.startswith(str(f["content"])) for f in ch.frames)  # always the whole text so far


async def test_flush_waits_for_delivery(kind: str, autojump_clock: trio.testing.MockClock) -> None:
    async def body(s: ReplyStream, ch: Channel) -> None:
        await s.append("hello")
        await s.flush()
        assert [f["content"] for f in ch.frames] == ["hello"]
        assert trio.current_time() == pytest.approx(0.5)  # the frame took its latency
        await s.finish()

    with trio.fail_after(60):
        ch, _ = await _run(kind, body, latency=0.5)
    assert [(f["content"], f["finish"]) for f in ch.frames] == [("hello", False), ("hello", True)]


async def test_final_frame_is_retried_then_reported(kind: str, autojump_clock: trio.testing.MockClock) -> None:
    busy = AckError("busy", errcode=50001)

    async def twice(s: ReplyStream, ch: Channel) -> None:
        await s.finish(suffix="text")
        assert [f["finish"] for f in ch.frames] == [True, True, True]

    async def always_failing(s: ReplyStream, ch: Channel) -> None:
        with pytest.raises(ReplyFailed):
            await s.finish(suffix="text")
        assert s.failed and len(ch.frames) == 3  # bounded: 3 attempts

    async def rate_limited(s: ReplyStream, ch: Channel) -> None:
        with pytest.raises(ReplyFailed):
            await s.finish(suffix="text")
        assert len(ch.frames) == 1  # 45009: sending again at once would not help

    with trio.fail_after(60):
        await _run(kind, twice, errors=[busy, busy])
        await _run(kind, always_failing, errors=[busy, busy, busy])
        await _run(kind, rate_limited, errors=[AckError("rate", errcode=45009)])


async def test_a_stale_req_id_sends_the_text_once_as_a_message(kind: str, autojump_clock: trio.testing.MockClock) -> None:
    stale = StaleReply("invalid req_id", errcode=846605)

    async def body(s: ReplyStream, ch: Channel) -> None:
        await s.append("part one")
        await s.flush()  # this frame is refused as stale
        await s.append(", part two")
        await s.finish()

    with trio.fail_after(60):
        ch, s = await _run(kind, body, errors=[stale])
    assert ch.fallbacks == ["part one, part two"]
    assert [f["finish"] for f in ch.frames] == [False]  # no final frame on a dead req_id
    assert not s.failed


async def test_card_once_images_on_the_final_frame_feedback_first(kind: str, autojump_clock: trio.testing.MockClock) -> None:
    card = TemplateCard(card_type="text_notice", task_id="T1")

    async def body(s: ReplyStream, ch: Channel) -> None:
        s.feedback_id = "fb"
        s.attach_card(card)
        with pytest.raises(RuntimeError):
            s.attach_card(card)
        s.add_image(PNG)
        await s.append("a")
        await s.flush()
        await s.append("b")
        await s.flush()
        await s.finish()

    with trio.fail_after(60):
        ch, _ = await _run(kind, body)
    assert [f["card"] for f in ch.frames] == [card, None, None]
    assert [f["feedback_id"] for f in ch.frames] == ["fb", None, None]
    assert [bool(f["msg_items"]) for f in ch.frames] == [False, False, True]


def test_at_most_ten_images() -> None:
    s = ReplyStream(Channel(), "S", SessionStreams())
    for _ in range(10):
        s.add_image(PNG)
    with pytest.raises(ValueError, match="at most 10"):
        s.add_image(PNG)
    with pytest.raises(ValueError, match="PNG or JPEG"):
        ReplyStream(Channel(), "S2", SessionStreams()).add_image(b"GIF89a")


async def test_appending_after_finish_is_an_error(autojump_clock: trio.testing.MockClock) -> None:
    async def body(s: ReplyStream, ch: Channel) -> None:
        await s.finish()
        with pytest.raises(RuntimeError):
            await s.append("late")

    with trio.fail_after(60):
        ch, _ = await _run("nowait", body)
    assert [f["content"] for f in ch.frames] == [""]


async def test_a_cancelled_flush_leaves_finish_its_own_answer(kind: str, autojump_clock: trio.testing.MockClock) -> None:
    """flush() and finish() share one one-shot channel only after an answered flush(): the
    answer of a flush() cancelled while waiting must never reach the finish() after it."""

    async def body(s: ReplyStream, ch: Channel) -> None:
        await s.append("hello")
        with trio.move_on_after(0.1) as waited:
            await s.flush()  # the frame takes 0.5 s: cancelled before its answer
        assert waited.cancelled_caught
        await s.append(" world")
        await s.flush()  # answered: its channel is kept for finish()
        await s.finish()

    with trio.fail_after(60):
        ch, s = await _run(kind, body, latency=0.5)
    assert ch.frames[-1]["content"] == "hello world" and ch.frames[-1]["finish"] is True
    assert s.finished and not s.failed and s.frames_sent == len(ch.frames)
