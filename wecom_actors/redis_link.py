"""One bot's connection to Redis (``redis_url``): URL checks, bounded calls, reconnects.

The client is `coredis <https://coredis.readthedocs.io>`_, which runs on Trio through anyio.
:class:`RedisLink` is an actor: ``run`` keeps a client open, reopening it with exponential
backoff while the server is down; every call is bounded by ``timeout`` and any failure (refused,
reset, timed out, refused by the server) is raised as :class:`RedisUnavailable`, so callers
handle one error. The URL's password is never logged: :func:`display_url` masks it.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit, urlunsplit

import trio

from .errors import WeComError

if TYPE_CHECKING:
    import coredis

__all__ = ["RedisLink", "RedisUnavailable", "check_redis_url", "display_url"]

log = logging.getLogger("wecom_actors.redis")

T = TypeVar("T")

_SCHEMES = ("redis", "rediss", "unix")


class RedisUnavailable(WeComError):
    """Redis could not be reached or did not answer in time (the caller retries)."""


def check_redis_url(url: str) -> str | None:
    """What is wrong with ``url`` as a Redis URL, or None if it is usable.

    Accepted: ``redis://[user:password@]host[:port][/db]``, the same with ``rediss://`` (TLS),
    and ``unix:///path/to/socket[?db=N]``.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        return "the scheme must be redis://, rediss:// or unix://"
    if scheme == "unix":
        return None if parts.path else "a unix:// URL needs the socket's path"
    if not parts.hostname:
        return "the URL has no host"
    if port == 0:
        return "the port must be 1..65535"
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        return f"the path must be a database number (/0, /1, ...), not {parts.path!r}"
    return None


def display_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and errors)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:  # e.g. a port that is not a number: mask user:password@ by hand
        return re.sub(r"(//[^/@]*?:)[^/@]*@", r"\1***@", url)


def redis_password(url: str) -> str | None:
    """The password in ``url`` (registered as a secret for log masking), if any."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class RedisLink:
    """A coredis client kept open by :meth:`run`; :meth:`call` runs one bounded command."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        reconnect_initial: float = 0.2,
        reconnect_max: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.shown = display_url(url)
        self.timeout = timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self._rng = rng or random.Random()
        self._client: coredis.Redis[str] | None = None
        #: True while the last call succeeded.
        self.connected = False
        #: What went wrong last (None once a call succeeds).
        self.last_error: str | None = None
        self.failures = 0
        self.calls = 0

    def _new_client(self) -> coredis.Redis[str]:
        import coredis
        from coredis.retry import NoRetryPolicy

        return coredis.Redis.from_url(
            self.url,
            decode_responses=True,
            connect_timeout=self.timeout,
            stream_timeout=self.timeout,
            retry_policy=NoRetryPolicy(),  # our callers retry on their own schedule
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep a client open; ``started()`` once it is (or its opening failed): calls raise
        RedisUnavailable while the server is down, and succeed again once it is back."""
        status: trio.TaskStatus[None] | None = task_status
        attempt = 0
        while True:
            client = self._new_client()
            try:
                async with client:  # connects lazily: a down server shows in the calls
                    self._client = client
                    attempt = 0
                    if status is not None:
                        status.started()
                        status = None
                    await trio.sleep_forever()
            except (trio.Cancelled, KeyboardInterrupt):
                raise
            except BaseException as exc:  # an ExceptionGroup from the client's task group
                if not _is_redis_failure(exc):
                    raise
                self._note(exc)
            finally:
                self._client = None
            if status is not None:
                status.started()
                status = None
            delay = min(self.reconnect_initial * 2**attempt, self.reconnect_max) * (0.8 + 0.4 * self._rng.random())
            attempt += 1
            log.warning("Redis at %s (WECOM_REDIS_URL) unreachable: %s; retrying in %.2f s", self.shown, self.last_error, delay)
            await trio.sleep(delay)

    def _note(self, exc: BaseException) -> None:
        self.connected = False
        self.failures += 1
        leaf = _first_leaf(exc)
        self.last_error = f"{type(leaf).__name__}: {leaf}"[:300]

    async def call(self, command: Callable[[coredis.Redis[str]], Awaitable[T]]) -> T:
        """``await command(client)`` within ``timeout``; RedisUnavailable on any failure
        (the client reconnects by itself on the next call)."""
        client = self._client
        if client is None:
            raise RedisUnavailable(f"Redis at {self.shown} is not connected ({self.last_error or 'connecting'})")
        self.calls += 1
        try:
            with trio.fail_after(self.timeout):
                result = await command(client)
        except trio.TooSlowError:
            self.connected = False
            self.failures += 1
            self.last_error = f"no answer within {self.timeout} s"
            raise RedisUnavailable(f"Redis at {self.shown}: {self.last_error}") from None
        except (trio.Cancelled, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if not _is_redis_failure(exc):
                raise
            self._note(exc)
            raise RedisUnavailable(f"Redis at {self.shown}: {self.last_error}") from None
        if not self.connected:
            self.connected = True
            if self.failures:
                log.info("Redis at %s answers again", self.shown)
        self.last_error = None
        return result


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _is_redis_failure(exc: BaseException) -> bool:
    """A failure of Redis or of the network (alone, or a group of only such), not a bug."""
    from coredis.exceptions import RedisError

    if isinstance(exc, BaseExceptionGroup):
        return all(_is_redis_failure(sub) for sub in exc.exceptions)
    return isinstance(exc, RedisError | OSError | TimeoutError)
