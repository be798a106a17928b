"""Chunked temp-media upload through the Correlator (docs/protocol-notes.md, 'Chunked upload'), and media message bodies.

``aibot_upload_media_init`` (type, filename, total_size, total_chunks, md5 of the whole data) ->
``upload_id``; ``aibot_upload_media_chunk`` for chunk_index 0..n-1 (0-based, what the official
Node SDK sends; the two official sources disagree here), each at most 512 KiB before base64, at most 100 chunks; then
``aibot_upload_media_finish`` -> ``media_id`` (valid 3 days). Choices, where the spec is silent:

* init and finish are not idempotent (``idempotent=False``): a resent init would open a second
  session, a resent finish would hit a consumed session. Chunks are (WeCom ignores a duplicate
  chunk), so each has its own req_id, is sent with ``idempotent=True`` and is retried
  ``chunk_retries`` times after an error ack or an ack timeout, 0.5 s x attempt apart (the Node
  SDK's policy), with a fresh req_id each time;
* ``concurrency`` chunks are in flight at once (3 by default; the Node SDK uses 2-4 and notes
  that many concurrent chunks get "system error");
* resume: a chunk whose connection died is sent again under the same ``upload_id`` (the
  correlator resends in-flight idempotent frames on the next connection; a chunk failed with
  ConnectionLost or OutcomeUnknown is sent again here), as long as the session has at least
  ``RESUME_MARGIN`` seconds of its 30 minutes left. A session that expired (by our clock) when
  something failed, or a finish whose outcome is unknown (connection lost, no ack), starts the
  upload over, once (the first session, or its media, is left to expire);
* per-type size limits (image 10 MiB, video 10 MiB, voice 2 MiB, file 20 MiB) are UNOFFICIAL
  (the official plugin's constants): enforced before anything is sent, and overridable
  with ``max_bytes``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
from collections.abc import Callable, Iterator
from typing import Protocol

import msgspec
import trio

from ..errors import AckError, AckTimeout, ConnectionLost, OutcomeUnknown, RequestError, UploadError
from ..protocol.frames import Ack, Cmd
from ..protocol.limits import (
    MAX_UPLOAD_CHUNK_BYTES,
    MAX_UPLOAD_CHUNKS,
    MEDIA_KINDS,
    UPLOAD_SESSION_TTL_SECONDS,
)
from ..protocol.replies import (
    UploadChunkBody,
    UploadFinishBody,
    UploadFinishResult,
    UploadInitBody,
    UploadInitResult,
)
from ..render import media_body, truncate_utf8

__all__ = [
    "MEDIA_KINDS",
    "MEDIA_SIZE_LIMITS",
    "UploadError",
    "UploadResult",
    "media_body",
    "plan_chunks",
    "truncate_utf8",
    "upload_media",
]

log = logging.getLogger("wecom_actors.upload")

_MiB = 1024 * 1024
#: UNOFFICIAL per-type limits (the official plugin's constants; docs/protocol-notes.md, 'Chunked upload').
MEDIA_SIZE_LIMITS = {"image": 10 * _MiB, "video": 10 * _MiB, "voice": 2 * _MiB, "file": 20 * _MiB}
#: A session with less time left than this is started over rather than resumed.
RESUME_MARGIN = 30.0
#: Video title / description in media messages, UTF-8 bytes (truncated, [NODE-T]).


class UploadResult(msgspec.Struct, frozen=True):
    media_id: str
    type: str
    created_at: int | None  # unix seconds, as WeCom reports it


class _Requester(Protocol):
    async def request(
        self, cmd: str, req_id: str, body: object = None, *, idempotent: bool = True, bound: bool = False
    ) -> Ack: ...


class _Ids(Protocol):
    def req_id(self, cmd: str) -> str: ...


class _Expired(Exception):
    """The session ran out (or its outcome is unknown): start over."""


_init_decoder = msgspec.json.Decoder(UploadInitResult)
_finish_decoder = msgspec.json.Decoder(UploadFinishResult)


def plan_chunks(
    kind: str, filename: str, size: int, *, chunk_size: int = MAX_UPLOAD_CHUNK_BYTES, max_bytes: int | None = None
) -> int:
    """Validate an upload and return its number of chunks (sans-IO); raise UploadError."""
    if kind not in MEDIA_KINDS:
        raise UploadError(f"media kind must be one of {', '.join(MEDIA_KINDS)}, not {kind!r}")
    if not filename:
        raise UploadError("the filename must not be empty")
    if size <= 0:
        raise UploadError("cannot upload empty media (0 bytes)")
    if not 0 < chunk_size <= MAX_UPLOAD_CHUNK_BYTES:
        raise UploadError(f"chunk_size must be 1..{MAX_UPLOAD_CHUNK_BYTES} bytes")
    chunks = math.ceil(size / chunk_size)
    if chunks > MAX_UPLOAD_CHUNKS:
        raise UploadError(
            f"{size} bytes need {chunks} chunks of {chunk_size} bytes; WeCom takes at most "
            f"{MAX_UPLOAD_CHUNKS} ({MAX_UPLOAD_CHUNKS * MAX_UPLOAD_CHUNK_BYTES // 1024:,} KiB in all)"
        )
    limit = MEDIA_SIZE_LIMITS[kind] if max_bytes is None else max_bytes
    if size > limit:
        raise UploadError(
            f"{kind} media of {size} bytes is over the {limit}-byte limit for {kind} "
            f"({limit / _MiB:g} MiB; unofficial per-type limit, see docs/protocol-notes.md, 'Chunked upload')"
        )
    return chunks


async def upload_media(
    correlator: _Requester,
    ids: _Ids,
    kind: str,
    filename: str,
    data: bytes,
    *,
    concurrency: int = 3,
    chunk_retries: int = 2,
    retry_delay: float = 0.5,
    max_resumes: int = 10,
    chunk_size: int = MAX_UPLOAD_CHUNK_BYTES,
    max_bytes: int | None = None,
) -> UploadResult:
    """Upload ``data`` as temp media of ``kind`` (file, image, voice, video): its media_id,
    type and creation time.

    Raises UploadError (invalid input, nothing sent), AckError / AckTimeout (a step refused or
    unanswered after its retries), OutcomeUnknown / ConnectionLost (the connection kept dying),
    Overloaded.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    total = plan_chunks(kind, filename, len(data), chunk_size=chunk_size, max_bytes=max_bytes)
    session = _Session(correlator, ids, kind, filename, data, total, chunk_size)
    session.retries, session.retry_delay, session.max_resumes = chunk_retries, retry_delay, max_resumes
    for attempt in (1, 2):
        try:
            return await session.run(concurrency)
        except _Expired as exc:
            if attempt == 2:
                raise exc.__cause__ or OutcomeUnknown(str(exc)) from None
            log.warning("upload of %s (%s): %s; starting over", filename, kind, exc)
    raise AssertionError("unreachable")


class _Session:
    """One upload; each :meth:`run` is one session (init -> chunks -> finish, one upload_id)."""

    def __init__(
        self, correlator: _Requester, ids: _Ids, kind: str, filename: str, data: bytes, total: int, chunk_size: int
    ) -> None:
        self.correlator = correlator
        self.ids = ids
        self.kind = kind
        self.filename = filename
        self.data = data
        self.total = total
        self.chunk_size = chunk_size
        self.md5 = hashlib.md5(data).hexdigest()
        self.retries = 2
        self.retry_delay = 0.5
        self.max_resumes = 10
        self.upload_id = ""
        self.started = -math.inf

    def _expired(self, *, margin: float = 0.0) -> bool:
        return trio.current_time() - self.started >= UPLOAD_SESSION_TTL_SECONDS - margin

    async def _request(self, cmd: str, body: object, *, idempotent: bool) -> Ack:
        return await self.correlator.request(cmd, self.ids.req_id(cmd), body, idempotent=idempotent)

    async def run(self, concurrency: int) -> UploadResult:
        await self._init()
        await self._chunks(concurrency)
        return await self._finish()

    async def _init(self) -> None:
        body = UploadInitBody(
            type=self.kind, filename=self.filename, total_size=len(self.data), total_chunks=self.total, md5=self.md5
        )
        resumes = 0
        while True:
            try:
                ack = await self._request(Cmd.UPLOAD_INIT, body, idempotent=False)
                break
            except (ConnectionLost, OutcomeUnknown):
                # A lost init at worst leaves an orphan session that expires on its own.
                resumes += 1
                if resumes > self.max_resumes:
                    raise
        self.upload_id = _init_decoder.decode(ack.body).upload_id
        self.started = trio.current_time()
        log.debug("upload %s: %s, %d bytes in %d chunks", self.upload_id, self.filename, len(self.data), self.total)

    async def _chunks(self, concurrency: int) -> None:
        failures: list[BaseException] = []
        indices: Iterator[int] = iter(range(self.total))

        async def worker(cancel: Callable[[], None]) -> None:
            for index in indices:
                try:
                    await self._chunk(index)
                except (RequestError, ConnectionLost, _Expired) as exc:
                    failures.append(exc)
                    cancel()
                    return

        async with trio.open_nursery() as nursery:
            for _ in range(min(concurrency, self.total)):
                nursery.start_soon(worker, nursery.cancel_scope.cancel)
        if failures:
            raise failures[0]

    async def _chunk(self, index: int) -> None:
        start = index * self.chunk_size
        encoded = base64.b64encode(self.data[start : start + self.chunk_size]).decode("ascii")
        body = UploadChunkBody(upload_id=self.upload_id, chunk_index=index, base64_data=encoded)
        errors = resumes = 0
        while True:
            try:
                await self._request(Cmd.UPLOAD_CHUNK, body, idempotent=True)
                return
            except (AckError, AckTimeout) as exc:
                if self._expired():
                    raise _Expired(f"session {self.upload_id} expired (30 minutes after init)") from exc
                errors += 1
                if errors > self.retries:
                    raise
                log.info("upload %s: chunk %d failed (%s); retry %d", self.upload_id, index, exc, errors)
                await trio.sleep(self.retry_delay * errors)
            except (ConnectionLost, OutcomeUnknown) as exc:
                if self._expired(margin=RESUME_MARGIN):
                    raise _Expired(f"session {self.upload_id} too close to its 30-minute expiry to resume") from exc
                resumes += 1
                if resumes > self.max_resumes:
                    raise
                log.info("upload %s: chunk %d lost with the connection; resending", self.upload_id, index)

    async def _finish(self) -> UploadResult:
        try:
            ack = await self._request(Cmd.UPLOAD_FINISH, UploadFinishBody(upload_id=self.upload_id), idempotent=False)
        except (ConnectionLost, OutcomeUnknown, AckTimeout) as exc:
            # The media may or may not exist now; a new session is the only safe way on.
            raise _Expired(f"the outcome of finishing {self.upload_id} is unknown") from exc
        except AckError as exc:
            if self._expired():
                raise _Expired(f"session {self.upload_id} expired before finish") from exc
            raise
        result = _finish_decoder.decode(ack.body)
        created = result.created_at
        if isinstance(created, str):
            created = int(created) if created.isdigit() else None
        return UploadResult(media_id=result.media_id, type=result.type or self.kind, created_at=created)
