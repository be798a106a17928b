"""Two webhook replicas of one bot behind one address (round-robin), sharing a real Redis.

Every callback goes to the next replica in turn: a message to one, its redelivery to the other,
each refresh poll to the other again. 100 users at once; real time (Redis's TTLs and the owner's
publishing interval are real), every wait bounded.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import trio

from wecom_actors import BotConfig, Turn, serve_bot

from .redis_server import RedisServer, redis_server_fixture  # noqa: F401  (fixture)
from .test_webhook_polls import KEY, PATH, TOKEN, Driver


class RoundRobin(Driver):
    """Each POST goes to the next app in turn (a load balancer without affinity)."""

    def __init__(self, apps: list[Any]) -> None:
        super().__init__(apps[0])
        self.apps = apps
        self.turns = itertools.count()
        self.by_app: Counter[int] = Counter()

    async def post(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        index = next(self.turns) % len(self.apps)
        self.by_app[index] += 1
        self.app = self.apps[index]  # read by Driver.post before it first awaits
        return await super().post(payload)


async def test_100_users_two_replicas_round_robin(redis_server: RedisServer) -> None:
    runs: Counter[str] = Counter()

    async def handler(turn: Turn) -> None:
        runs[turn.message.msgid] += 1
        text = turn.text or ""
        async with turn.stream() as stream:
            await stream.append(text[: len(text) // 2])
            await stream.flush()
            await trio.sleep(0.3)
            await stream.append(text[len(text) // 2 :])

    config = BotConfig(
        mode="webhook", token=TOKEN, encoding_aes_key=KEY, host="127.0.0.1", port=0, callback_path=PATH,
        redis_url=redis_server.url,
    )  # fmt: skip
    finals: Counter[str] = Counter()
    polls = 0
    async with trio.open_nursery() as nursery:
        handles = [await nursery.start(serve_bot, config, handler) for _ in range(2)]
        wecom = RoundRobin([h.runtime.app for h in handles])

        async def user(n: int) -> None:
            nonlocal polls
            text = f"hello from user {n}, please echo this back"
            payload = {
                "msgid": f"msg-{n}", "aibotid": "bot", "chattype": "single", "from": {"userid": f"u{n}"},
                "msgtype": "text", "text": {"content": text},
            }  # fmt: skip
            first = await wecom.post(payload)
            again = await wecom.post(payload)  # WeCom's redelivery, to the other replica
            assert first is not None and again is not None
            stream_id = first["stream"]["id"]
            assert again["stream"]["id"] == stream_id
            seen = [first["stream"], again["stream"]]
            while not seen[-1]["finish"]:
                await trio.sleep(0.2)
                seen.append(await wecom.refresh(stream_id, user=f"u{n}"))
                polls += 1
                assert len(seen) < 60
            contents = [s["content"] for s in seen]
            assert contents[-1] == text
            assert all(text.startswith(c) for c in contents)  # never a wrong or shrinking text
            finals[stream_id] += sum(1 for s in seen if s["finish"])

        with trio.fail_after(30):
            async with trio.open_nursery() as users:
                for n in range(100):
                    users.start_soon(user, n)
        stats = [h.runtime.shared.counts for h in handles]
        redeliveries = sum(h.runtime.wcounts["redeliveries"] for h in handles)
        nursery.cancel_scope.cancel()
    assert runs == Counter({f"msg-{n}": 1 for n in range(100)})  # the handler ran once per message
    assert len(finals) == 100 and set(finals.values()) == {1}  # every stream finished, once
    assert wecom.by_app[0] > 100 and wecom.by_app[1] > 100
    # Each redelivery was answered as one (by the owner's table, or elsewhere from Redis); with
    # 100 users at once the turns interleave, so many land on the other replica.
    assert redeliveries == 100 and sum(s["claims_lost"] for s in stats) >= 20
    assert sum(s["remote_polls"] for s in stats) >= 20  # polls answered by a non-owner
    print(f"\n{polls} refresh polls; answered from Redis by a non-owner: {sum(s['remote_polls'] for s in stats)}")


async def test_redis_down_new_messages_are_handled_here_and_foreign_polls_get_503() -> None:
    from .redis_server import free_port

    config = BotConfig(
        mode="webhook", token=TOKEN, encoding_aes_key=KEY, host="127.0.0.1", port=0, callback_path=PATH,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )  # fmt: skip
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(serve_bot, config, "echo")
        wecom = Driver(handle.runtime.app)
        first = await wecom.send_text("still answered without Redis")
        with trio.fail_after(5):
            while True:  # our own stream: answered from our table
                await trio.sleep(0.2)
                done = await wecom.refresh(first["id"])
                if done["finish"]:
                    break
        assert done["content"] == "still answered without Redis"
        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        wecom.app = _status_recorder(handle.runtime.app, send)
        try:
            await wecom.refresh("stream-of-another-replica")
        except (AssertionError, IndexError):
            pass
        assert statuses == [503]  # WeCom polls again, instead of the stream ending empty
        nursery.cancel_scope.cancel()


def _status_recorder(app: Any, record: Any) -> Any:
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def both(message: dict[str, Any]) -> None:
            await record(message)
            await send(message)

        await app(scope, receive, both)

    return wrapped
