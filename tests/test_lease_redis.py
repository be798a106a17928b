"""The lease's Redis scripts and the Redis link against a real redis-server (real time: short
TTLs, every wait bounded)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import pytest
import trio

from wecom_actors import BotConfig
from wecom_actors.errors import ConfigError
from wecom_actors.lease import Lease, lease_for
from wecom_actors.lease_store import RedisLeaseStore, lease_keys
from wecom_actors.redis_link import RedisLink, RedisUnavailable, check_redis_url, display_url

from .redis_server import RedisServer, eventually, free_port, redis_server_fixture  # noqa: F401  (fixture)

_ids = iter(range(10**6))


async def _is_none(value: Awaitable[object]) -> bool:
    return await value is None


def bot_id() -> str:
    return f"bot-{next(_ids)}-{random.getrandbits(24):06x}"


@asynccontextmanager
async def linked(url: str, call_timeout: float = 1.0) -> AsyncIterator[RedisLink]:
    link = RedisLink(url, timeout=call_timeout, reconnect_initial=0.05, reconnect_max=0.2)
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        yield link
        nursery.cancel_scope.cancel()


async def test_scripts_acquire_renew_release_expire_fence(redis_server: RedisServer) -> None:
    async with linked(redis_server.url) as link:
        store = RedisLeaseStore(link)
        bot = bot_id()
        first = await store.acquire(bot, "r1", 0.5)
        assert first.token >= 1
        other = await store.acquire(bot, "r2", 0.5)
        assert other.token == 0 and 0 < other.remaining <= 0.5
        assert await store.holder(bot) == "r1"
        assert not await store.renew(bot, "r2", 0.5)  # only the holder renews
        assert not await store.release(bot, "r2")  # only the holder releases
        assert await store.renew(bot, "r1", 0.5)
        with trio.fail_after(3):
            await eventually(lambda: _is_none(store.holder(bot)), step=0.05)  # expiry: Redis's time
        assert not await store.renew(bot, "r1", 0.5)  # too late: not ours any more
        second = await store.acquire(bot, "r2", 5)
        assert second.token == first.token + 1  # the fencing counter grows on each acquisition
        assert await store.release(bot, "r2") and await store.holder(bot) is None
        third = await store.acquire(bot, "r1", 5)
        assert third.token == second.token + 1
        fence_key = lease_keys(bot)[1]
        assert await link.call(lambda c: c.get(fence_key)) == str(third.token)


async def test_link_to_a_down_server_raises_unavailable_and_reconnects() -> None:
    server = RedisServer()
    try:
        link = RedisLink(server.url, timeout=0.5, reconnect_initial=0.05, reconnect_max=0.1)
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            for _ in range(2):
                with pytest.raises(RedisUnavailable, match=r"127\.0\.0\.1"):
                    await link.call(lambda c: c.ping())
            assert link.failures == 2 and not link.connected and "Error" in (link.last_error or "")
            server.start()
            assert await link.call(lambda c: c.set("k", "v"))
            assert link.connected and link.last_error is None
            server.stop()
            with pytest.raises(RedisUnavailable):
                await link.call(lambda c: c.get("k"))
            server.start()
            with trio.fail_after(5):
                while True:  # the same client reconnects on its own
                    try:
                        await link.call(lambda c: c.ping())
                        break
                    except RedisUnavailable:
                        await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
    finally:
        server.close()


async def test_lease_over_redis_takeover_after_release_and_after_expiry(redis_server: RedisServer) -> None:
    bot = bot_id()
    events: list[str] = []

    def conn(name: str):  # type: ignore[no-untyped-def]
        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            events.append(f"up {name}")
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                events.append(f"down {name}")

        return run

    async with linked(redis_server.url) as link:
        store = RedisLeaseStore(link)
        la = Lease(store, bot, ttl=0.6, replica="a")
        lb = Lease(store, bot, ttl=0.6, replica="b")
        async with trio.open_nursery() as nursery:
            scope_a = trio.CancelScope()

            async def run_a(*, task_status: trio.TaskStatus[None]) -> None:
                with scope_a:
                    await la.run(conn("a"), task_status=task_status)

            await nursery.start(run_a)
            await nursery.start(lb.run, conn("b"))
            await trio.sleep(1.5)  # several TTLs: renewals hold it
            assert events == ["up a"] and la.statistics().held and lb.state == "standby"
            start = trio.current_time()
            scope_a.cancel()  # clean stop: released
            with trio.fail_after(2):
                await eventually(lambda: "up b" in events)
            assert trio.current_time() - start < 0.6 / 3 + 0.2
            assert lb.token == la.token + 1
            nursery.cancel_scope.cancel()


async def test_lease_released_on_stop(redis_server: RedisServer) -> None:
    bot = bot_id()
    async with linked(redis_server.url) as link:
        store = RedisLeaseStore(link)
        lease = Lease(store, bot, ttl=5, replica="a")

        async def conn(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            await nursery.start(lease.run, conn)
            assert await store.holder(bot) == "a"
            nursery.cancel_scope.cancel()
        assert await store.holder(bot) is None  # not after 5 s: at once


async def test_lease_for_config_keeps_its_own_link_until_released(redis_server: RedisServer) -> None:
    config = BotConfig(mode="long-connection", bot_id=bot_id(), bot_secret="s", redis_url=redis_server.url, lease_ttl=1)
    lease = lease_for(config)
    assert lease is not None and lease.link is not None

    async def conn(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        await nursery.start(lease.run, conn)
        with trio.fail_after(5):
            await eventually(lambda: lease.state == "held")
        nursery.cancel_scope.cancel()
    assert lease.state == "released"
    async with linked(redis_server.url) as link:
        assert await RedisLeaseStore(link).holder(config.bot_id) is None


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://h:6379", "scheme"),
        ("redis://", "no host"),
        ("redis://h:notaport", "valid URL"),
        ("redis://h:99999", "valid URL"),
        ("redis://h/zero", "database number"),
        ("unix://", "path"),
    ],
)
def test_malformed_urls_are_named(url: str, problem: str) -> None:
    assert problem in (check_redis_url(url) or "")


@pytest.mark.parametrize("url", ["redis://h", "redis://u:p@h:6380/2", "rediss://h:6379/0", "unix:///run/redis.sock"])
def test_good_urls(url: str) -> None:
    assert check_redis_url(url) is None


def test_config_refuses_a_malformed_url_and_hides_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        BotConfig.load(environ={"WECOM_BOT_ID": "b", "WECOM_BOT_SECRET": "s", "WECOM_REDIS_URL": "http://x:pw@h"})
    assert info.value.setting == "WECOM_REDIS_URL" and "the scheme must be" in str(info.value)
    with pytest.raises(ConfigError) as info:
        BotConfig.load(environ={"WECOM_BOT_ID": "b", "WECOM_BOT_SECRET": "s", "WECOM_REDIS_URL": "redis://u:pw123456@h:port"})
    assert "pw123456" not in str(info.value) and "redis://u:***@h:port" in str(info.value)
    assert "not a valid URL" in str(info.value)
    with pytest.raises(ConfigError, match="WECOM_LEASE_TTL"):
        BotConfig.load(environ={"WECOM_BOT_ID": "b", "WECOM_BOT_SECRET": "s", "WECOM_LEASE_TTL": "0.1"})
    config = BotConfig.load(
        environ={"WECOM_BOT_ID": "b", "WECOM_BOT_SECRET": "s", "WECOM_REDIS_URL": "redis://u:hunter22@h:1/0"}
    )
    assert config.lease_ttl == 10.0
    assert "hunter22" not in repr(config) and "redis://u:***@h:1/0" in repr(config)
    assert display_url("redis://h:1") == "redis://h:1"


async def test_free_port_has_no_server() -> None:
    link = RedisLink(f"redis://127.0.0.1:{free_port()}", timeout=0.5)
    with pytest.raises(RedisUnavailable, match="not connected"):
        await link.call(lambda c: c.ping())
