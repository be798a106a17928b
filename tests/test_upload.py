"""Chunked upload: the plan (sans-IO), the protocol against a scripted correlator, and echo's
``/upload N`` end to end against the bundled fake."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
import trio
import trio.lowlevel
import trio.testing

from wecom_actors import (
    AckError,
    AckTimeout,
    BotConfig,
    BotHandle,
    ConnectionLost,
    OutcomeUnknown,
    UploadError,
    UploadResult,
    echo,
    serve_bot,
)
from wecom_actors.handlers.echo import long_text
from wecom_actors.longconn.upload import (
    MEDIA_SIZE_LIMITS,
    media_body,
    plan_chunks,
    truncate_utf8,
    upload_media,
)
from wecom_actors.protocol.frames import Ack
from wecom_actors.protocol.replies import MediaId, VideoMediaId
from wecom_actors.testing import FakeWeCom, open_fake_wecom

from .fake_bot import bot_config

KiB = 1024
MiB = 1024 * 1024
CHUNK = "aibot_upload_media_chunk"

# --- the plan -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "chunks"), [(1, 1), (512 * KiB, 1), (512 * KiB + 1, 2), (1_500_000, 3), (20 * MiB, 40)]
)
def test_chunk_count(size: int, chunks: int) -> None:
    assert plan_chunks("file", "f.bin", size) == chunks


def test_the_100_chunk_limit_names_51200_kib() -> None:
    assert plan_chunks("file", "f", 100 * 512 * KiB, max_bytes=10**9) == 100
    with pytest.raises(UploadError, match=r"101 chunks.*at most 100 \(51,200 KiB in all\)"):
        plan_chunks("file", "f", 100 * 512 * KiB + 1, max_bytes=10**9)


@pytest.mark.parametrize("kind", sorted(MEDIA_SIZE_LIMITS))
def test_per_type_limits(kind: str) -> None:
    limit = MEDIA_SIZE_LIMITS[kind]
    plan_chunks(kind, "m", limit)
    with pytest.raises(UploadError, match=f"over the {limit}-byte limit for {kind}.*unofficial"):
        plan_chunks(kind, "m", limit + 1)


@pytest.mark.parametrize(
    ("kind", "filename", "size", "message"),
    [("doc", "f", 1, "kind must be one of"), ("file", "", 1, "filename"), ("file", "f", 0, "empty")],
)
def test_invalid_uploads(kind: str, filename: str, size: int, message: str) -> None:
    with pytest.raises(UploadError, match=message) as info:
        plan_chunks(kind, filename, size)
    assert isinstance(info.value, ValueError)


def test_media_bodies_truncate_video_text_on_a_character_boundary() -> None:
    assert media_body("file", "M") == MediaId("M")
    title, desc = "视频" * 50, "é" * 300  # 300 and 600 bytes
    body = media_body("video", "M", title=title, description=desc)
    assert isinstance(body, VideoMediaId)
    assert body.title == "视频" * 21 and len(body.title.encode()) == 126  # 128 would split a char
    assert body.description == "é" * 256
    assert media_body("video", "M", title="short") == VideoMediaId("M", title="short")
    assert truncate_utf8("abc", 2) == "ab" and truncate_utf8("", 0) == ""
    with pytest.raises(UploadError, match="only video"):
        media_body("image", "M", title="t")
    with pytest.raises(UploadError, match="kind"):
        media_body("gif", "M")


# --- the protocol, against a scripted correlator ---------------------------------------------------


class ScriptedWeCom:
    """A correlator stand-in that plays WeCom's upload side in memory (0-based chunks)."""

    def __init__(self, *, chunk_delay: float = 0.0, finish_delay: float = 0.0) -> None:
        self.sessions: dict[str, dict[int, bytes]] = {}
        self.inits: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.media: dict[str, bytes] = {}
        self.chunk_delay = chunk_delay
        self.finish_delay = finish_delay
        self.in_flight = self.max_in_flight = 0
        self.faults: list[tuple[str, BaseException]] = []  # (cmd, error) consumed in order
        self._ids = itertools.count(1)

    async def request(self, cmd: str, req_id: str, body: Any = None, *, idempotent: bool = True, bound: bool = False) -> Ack:
        data = msgspec.to_builtins(body)
        self.requests.append((cmd, req_id, data))
        assert idempotent is (cmd == CHUNK)
        for i, (fault_cmd, error) in enumerate(self.faults):
            if fault_cmd == cmd:
                del self.faults[i]
                await trio.lowlevel.checkpoint()
                raise error
        if cmd == "aibot_upload_media_init":
            upload_id = f"up{next(self._ids)}"
            self.sessions[upload_id] = {}
            self.inits.append(data)
            return _ack(req_id, {"upload_id": upload_id})
        if cmd == CHUNK:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await trio.sleep(self.chunk_delay)
            finally:
                self.in_flight -= 1
            self.sessions[data["upload_id"]].setdefault(data["chunk_index"], base64.b64decode(data["base64_data"]))
            return _ack(req_id)
        await trio.sleep(self.finish_delay)
        chunks = self.sessions.pop(data["upload_id"])
        blob = b"".join(chunks[i] for i in range(len(chunks)))
        media_id = f"media{len(self.media) + 1}"
        self.media[media_id] = blob
        return _ack(req_id, {"type": "file", "media_id": media_id, "created_at": "1380000000"})

    def cmds(self) -> list[str]:
        return [cmd.removeprefix("aibot_upload_media_") for cmd, _, _ in self.requests]


def _ack(req_id: str, body: dict[str, Any] | None = None) -> Ack:
    raw = msgspec.Raw(msgspec.json.encode(body)) if body is not None else msgspec.Raw(b"")
    return Ack(req_id=req_id, errcode=0, errmsg="ok", body=raw)


class Ids:
    def __init__(self) -> None:
        self._n = itertools.count(1)

    def req_id(self, cmd: str) -> str:
        return f"{cmd}_{next(self._n)}"


def refused(errcode: int = 50001) -> AckError:
    return AckError("refused", errcode=errcode, errmsg="system error")


DATA = bytes(random.Random(1).randbytes(5 * 512 * KiB + 1234))  # 6 chunks


async def test_init_chunks_finish_with_md5_and_bounded_concurrency(autojump_clock: trio.testing.MockClock) -> None:
    wecom = ScriptedWeCom(chunk_delay=1.0)
    with trio.fail_after(60):
        start = trio.current_time()
        result = await upload_media(wecom, Ids(), "file", "data.bin", DATA, concurrency=3)
    assert result == UploadResult(media_id="media1", type="file", created_at=1380000000)
    assert wecom.media["media1"] == DATA
    assert wecom.inits == [
        {"type": "file", "filename": "data.bin", "total_size": len(DATA), "total_chunks": 6, "md5": hashlib.md5(DATA).hexdigest()}
    ]
    assert wecom.cmds() == ["init", *["chunk"] * 6, "finish"]
    assert wecom.max_in_flight == 3
    assert trio.current_time() - start == 2.0  # two rounds of three 1-second chunks
    req_ids = [r for _, r, _ in wecom.requests]
    assert len(set(req_ids)) == len(req_ids)  # every request has its own req_id
    assert sorted(d["chunk_index"] for c, _, d in wecom.requests if c == CHUNK) == list(range(6))


async def test_a_refused_chunk_is_retried_with_backoff(autojump_clock: trio.testing.MockClock) -> None:
    wecom = ScriptedWeCom()
    wecom.faults = [(CHUNK, refused()), (CHUNK, AckTimeout("no ack"))]
    with trio.fail_after(60):
        start = trio.current_time()
        result = await upload_media(wecom, Ids(), "file", "f", DATA, concurrency=1)
    assert wecom.media[result.media_id] == DATA
    assert wecom.cmds().count("chunk") == 8
    assert trio.current_time() - start == 0.5 + 1.0  # 0.5 s x attempt


async def test_a_chunk_refused_past_its_retries_fails_the_upload(autojump_clock: trio.testing.MockClock) -> None:
    wecom = ScriptedWeCom()
    wecom.faults = [(CHUNK, refused(40058))] * 3
    with trio.fail_after(60), pytest.raises(AckError) as info:
        await upload_media(wecom, Ids(), "file", "f", DATA, concurrency=1, chunk_retries=2)
    assert info.value.errcode == 40058
    assert wecom.cmds() == ["init", "chunk", "chunk", "chunk"]  # chunk 0, then 2 retries


async def test_chunks_lost_with_the_connection_resume_under_the_same_upload_id(autojump_clock: trio.testing.MockClock) -> None:
    wecom = ScriptedWeCom()
    wecom.faults = [(CHUNK, ConnectionLost("dropped")), (CHUNK, OutcomeUnknown("dropped"))]
    with trio.fail_after(60):
        result = await upload_media(wecom, Ids(), "image", "a.png", DATA)
    assert wecom.media[result.media_id] == DATA
    assert len(wecom.inits) == 1
    assert {d["upload_id"] for c, _, d in wecom.requests if c == CHUNK} == {"up1"}


async def test_an_expired_session_starts_over_once(autojump_clock: trio.testing.MockClock) -> None:
    # The connection is gone for 30 minutes in the middle of the upload.
    wecom = ScriptedWeCom()

    class Slow(ConnectionLost):
        pass

    async def lost_for_half_an_hour(cmd: str, req_id: str, body: Any = None, **kw: Any) -> Ack:
        if cmd == CHUNK and body.chunk_index == 3 and len(wecom.inits) == 1:
            await trio.sleep(1800)
            raise Slow("dropped")
        return await ScriptedWeCom.request(wecom, cmd, req_id, body, **kw)

    wecom.request = lost_for_half_an_hour  # type: ignore[method-assign]
    with trio.fail_after(4000):
        result = await upload_media(wecom, Ids(), "file", "f", DATA, concurrency=1)
    assert wecom.media[result.media_id] == DATA
    assert [s["total_chunks"] for s in wecom.inits] == [6, 6]

    # It starts over only once: a second expiry raises the error behind it.
    wecom = ScriptedWeCom()

    async def always_late(cmd: str, req_id: str, body: Any = None, **kw: Any) -> Ack:
        if cmd == CHUNK:
            await trio.sleep(1800)
            raise refused(40058)
        return await ScriptedWeCom.request(wecom, cmd, req_id, body, **kw)

    wecom.request = always_late  # type: ignore[method-assign]
    with trio.fail_after(10_000), pytest.raises(AckError):
        await upload_media(wecom, Ids(), "file", "f", DATA, concurrency=1)
    assert len(wecom.inits) == 2


async def test_a_finish_with_an_unknown_outcome_starts_over(autojump_clock: trio.testing.MockClock) -> None:
    wecom = ScriptedWeCom()
    wecom.faults = [("aibot_upload_media_finish", OutcomeUnknown("dropped"))]
    with trio.fail_after(60):
        result = await upload_media(wecom, Ids(), "file", "f", DATA[:1000])
    assert wecom.media[result.media_id] == DATA[:1000]
    assert wecom.cmds() == ["init", "chunk", "finish", "init", "chunk", "finish"]


async def test_invalid_input_sends_nothing() -> None:
    wecom = ScriptedWeCom()
    with pytest.raises(UploadError):
        await upload_media(wecom, Ids(), "image", "big.png", b"x" * (10 * MiB + 1))
    with pytest.raises(ValueError):
        await upload_media(wecom, Ids(), "file", "f", b"x", concurrency=0)
    assert wecom.requests == []


# --- end to end: echo's /upload against the bundled fake ----------------------------------------


@pytest.fixture
def io_clock() -> trio.testing.MockClock:
    """Virtual time that jumps only after 20 ms of real idleness. A 700 KB chunk frame takes
    real time on the loopback socket; with autojump_threshold=0 the clock could jump while it is
    still in transit and fire ack or write timeouts that real time would never reach."""
    return trio.testing.MockClock(autojump_threshold=0.02)


@asynccontextmanager
async def echo_bot(**fake_kwargs: Any) -> AsyncIterator[tuple[FakeWeCom, BotHandle]]:
    async with open_fake_wecom(**fake_kwargs) as fake, trio.open_nursery() as nursery:
        bot = await nursery.start(_serve, bot_config(fake))
        yield fake, bot
        nursery.cancel_scope.cancel()


async def _serve(config: BotConfig, *, task_status: trio.TaskStatus[BotHandle]) -> None:
    await serve_bot(config, echo, task_status=task_status, rng=random.Random(7))


def sent(fake: FakeWeCom, cmd: str) -> list[Any]:
    return [f for f in fake.frames if f.direction == "in" and f.cmd == cmd]


async def wait_file(fake: FakeWeCom, user: str = "alice") -> Any:
    await fake.wait_until(lambda: any(b.kind == "file" for b in fake.conversation(user)))
    return next(b for b in fake.conversation(user) if b.kind == "file")


async def test_upload_1500000_bytes_end_to_end(io_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, _):
            await fake.send_text("/upload 1500000")
            bubble = await wait_file(fake)
            assert bubble.content == "echo.txt" and bubble.media_id is not None
            media = fake.media(bubble.media_id)
            assert media is not None and media.type == "file" and media.filename == "echo.txt"
            assert media.data == long_text(1_500_000).encode("ascii")
            (init,) = sent(fake, "aibot_upload_media_init")
            assert init.body["total_chunks"] == 3 and init.body["md5"] == hashlib.md5(media.data).hexdigest()
            assert sorted(f.body["chunk_index"] for f in sent(fake, CHUNK)) == [0, 1, 2]
            assert [b.kind for b in fake.conversation("alice")] == ["file"]


async def test_a_refused_chunk_is_retried_end_to_end(io_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, _):
            fake.faults.ack_errors(50001, cmd=CHUNK, count=1, errmsg="system error")
            await fake.send_text("/upload 1500000")
            bubble = await wait_file(fake)
            assert fake.media(bubble.media_id).data == long_text(1_500_000).encode()  # type: ignore[union-attr]
            chunks = sent(fake, CHUNK)
            assert len(chunks) == 4 and sorted({f.body["chunk_index"] for f in chunks}) == [0, 1, 2]


async def test_a_drop_mid_upload_resumes_the_same_session(io_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(120):
        async with echo_bot() as (fake, bot):
            # The first chunk is still being processed when the connection dies: not applied.
            fake.faults.delay_acks(1.0, cmd=CHUNK, count=3)
            await fake.send_text("/upload 1500000")
            await fake.wait_until(lambda: len(sent(fake, CHUNK)) >= 1)
            fake.faults.drop()
            first = sent(fake, CHUNK)[0]
            await fake.wait_subscribed(count=2)
            bubble = await wait_file(fake)
            assert fake.media(bubble.media_id).data == long_text(1_500_000).encode()  # type: ignore[union-attr]
            assert len(sent(fake, "aibot_upload_media_init")) == 1  # resumed, not started over
            later = [f.body for f in sent(fake, CHUNK) if f.conn_id != first.conn_id]
            assert {b["upload_id"] for b in later} == {first.body["upload_id"]}  # the same session
            assert first.body["chunk_index"] in {b["chunk_index"] for b in later}  # the lost chunk again
            # The callback's req_id died with the first connection: the file went out once as a
            # proactive message to the same chat.
            assert [b.kind for b in fake.conversation("alice")] == ["file"]
            assert [f.body["msgtype"] for f in sent(fake, "aibot_send_msg")] == ["file"]
            assert bot.statistics().reconnects == 1


async def test_too_large_uploads_fail_clearly(io_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(60):
        async with echo_bot() as (fake, bot):
            cb = await fake.send_text("/upload 20971521")
            view = await fake.wait_stream_finished(cb.req_id)
            assert "upload failed" in view.content and "20971520-byte limit for file" in view.content
            with pytest.raises(UploadError, match="at most 100"):
                await bot.upload_media("file", "big.bin", b"0" * (100 * 512 * KiB + 1))
            assert sent(fake, "aibot_upload_media_init") == []
