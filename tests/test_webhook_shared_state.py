"""The state webhook replicas share (msgid dedupe, stream snapshots): one contract, checked on
the in-process store and on a real Redis."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from wecom_actors.redis_link import RedisLink, RedisUnavailable
from wecom_actors.webhook.shared_state import (
    MAX_SNAPSHOT_BYTES,
    MemoryWebhookState,
    RedisWebhookState,
    StreamSnapshot,
    WebhookState,
    namespace_for,
)

from .redis_server import RedisServer, free_port, redis_server_fixture  # noqa: F401  (fixture)

_ns = itertools.count()


@asynccontextmanager
async def state(kind: str, server: RedisServer | None, **ttls: float) -> AsyncIterator[WebhookState]:
    if kind == "memory":
        yield MemoryWebhookState(**ttls)
        return
    assert server is not None
    link = RedisLink(server.url, timeout=2.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        yield RedisWebhookState(link, f"test-{next(_ns)}-{random.getrandbits(24)}", **ttls)
        nursery.cancel_scope.cancel()


def snap(version: int, content: str, finish: bool = False) -> StreamSnapshot:
    return StreamSnapshot(version, content, finish, answer=f'{{"content": "{content}"}}')


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(kind: str, request: pytest.FixtureRequest) -> RedisServer | None:
    return request.getfixturevalue("redis_server") if kind == "redis" else None


async def test_msgid_runs_once(kind: str, server: RedisServer | None) -> None:
    async with state(kind, server) as shared:
        assert await shared.first_delivery("m1")
        assert not await shared.first_delivery("m1")
        assert await shared.first_delivery("m2")
        with pytest.raises(ValueError, match="msgid"):
            await shared.first_delivery("")


async def test_only_newer_snapshots_replace(kind: str, server: RedisServer | None) -> None:
    async with state(kind, server) as shared:
        assert await shared.snapshot("s1") is None
        assert await shared.publish("s1", snap(1, "a"))
        assert await shared.publish("s1", snap(3, "abc"))
        assert not await shared.publish("s1", snap(2, "ab"))  # late and older: ignored
        assert await shared.snapshot("s1") == snap(3, "abc")
        assert await shared.publish("s1", snap(4, "abcd", finish=True))
        got = await shared.snapshot("s1")
        assert got is not None and got.finish and got.content == "abcd"
        with pytest.raises(ValueError, match="bound"):
            await shared.publish("s2", snap(1, "x" * (MAX_SNAPSHOT_BYTES + 1)))
        assert await shared.snapshot("s2") is None


async def test_entries_expire(kind: str, server: RedisServer | None) -> None:
    async with state(kind, server, stream_ttl=0.3, dedupe_ttl=0.3) as shared:
        assert await shared.first_delivery("m")
        assert await shared.publish("s", snap(1, "a"))
        await trio.sleep(0.45)  # real time: Redis counts its TTLs itself
        assert await shared.snapshot("s") is None
        assert await shared.first_delivery("m")


async def test_memory_tables_are_bounded(autojump_clock: trio.testing.MockClock) -> None:
    shared = MemoryWebhookState(max_entries=10)
    for i in range(25):
        assert await shared.first_delivery(f"m{i}")
        assert await shared.publish(f"s{i}", snap(1, str(i)))
    assert len(shared._seen) == 10 and len(shared._streams) == 10
    assert await shared.snapshot("s0") is None and await shared.snapshot("s24") == snap(1, "24")


async def test_redis_down_raises_unavailable() -> None:
    link = RedisLink(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        shared = RedisWebhookState(link, "down")
        with pytest.raises(RedisUnavailable):
            await shared.first_delivery("m")
        with pytest.raises(RedisUnavailable):
            await shared.snapshot("s")
        nursery.cancel_scope.cancel()


def test_namespace_hides_the_token() -> None:
    ns = namespace_for("my-token", "corp")
    assert "my-token" not in ns and len(ns) == 20 and ns != namespace_for("other", "corp")


async def test_two_replicas_round_robin_100_users(redis_server: RedisServer) -> None:
    """Two replicas sharing one Redis, requests alternating between them: every callback is
    delivered twice (a redelivery lands on the other replica), every stream is polled on both.
    The handler runs once per msgid, every poll gets the stream's latest content, and each
    stream's finish is seen by the polls."""
    links = [RedisLink(redis_server.url, timeout=2.0) for _ in range(2)]
    async with trio.open_nursery() as nursery:
        for link in links:
            await nursery.start(link.run)
        ns = f"rr-{random.getrandbits(32)}"
        replicas = [RedisWebhookState(link, ns) for link in links]
        runs: dict[str, int] = {}
        turn = itertools.count()

        def next_replica() -> RedisWebhookState:
            return replicas[next(turn) % 2]

        async def user(n: int) -> None:
            msgid, stream_id = f"msg-{n}", f"stream-{n}"
            for _ in range(2):  # the callback, then WeCom's redelivery, round-robin
                if await next_replica().first_delivery(msgid):
                    runs[msgid] = runs.get(msgid, 0) + 1
                    owner = next_replica()  # the handler writes through its own replica
                    text = ""
                    for part in range(1, 4):
                        text += f"part{part} "
                        await owner.publish(stream_id, snap(part, text, finish=part == 3))
            seen: list[StreamSnapshot] = []
            while not (seen and seen[-1].finish):  # polls, round-robin
                got = await next_replica().snapshot(stream_id)
                assert got is not None
                seen.append(got)
            assert seen[-1].content == "part1 part2 part3 "
            assert [s.version for s in seen] == sorted(s.version for s in seen)

        with trio.fail_after(20):
            async with trio.open_nursery() as users:
                for n in range(100):
                    users.start_soon(user, n)
        assert runs == {f"msg-{n}": 1 for n in range(100)}
        nursery.cancel_scope.cancel()


async def test_claim_returns_the_owners_value_and_served_versions_only_grow(
    kind: str, server: RedisServer | None
) -> None:
    async with state(kind, server) as shared:
        assert await shared.claim("m1", "stream-a") is None  # ours
        assert await shared.claim("m1", "stream-b") == "stream-a"  # the owner's stream id
        assert await shared.claim("m2", "") is None and await shared.claim("m2", "x") == ""  # an event
        assert await shared.served_version("s") == 0
        await shared.mark_served("s", 2)  # no such stream: nothing is recorded
        assert await shared.served_version("s") == 0
        await shared.publish("s", snap(3, "abc"))
        await shared.mark_served("s", 2)
        await shared.mark_served("s", 1)
        assert await shared.served_version("s") == 2
        await shared.mark_served("s", 3)
        assert await shared.served_version("s") == 3


async def test_serve_reads_and_records_in_one_call(kind: str, server: RedisServer | None) -> None:
    async with state(kind, server) as shared:
        assert await shared.serve("s") is None
        await shared.publish("s", snap(2, "ab"))
        assert await shared.serve("s") == snap(2, "ab")
        assert await shared.served_version("s") == 2
