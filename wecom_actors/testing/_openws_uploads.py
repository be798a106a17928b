"""The chunked temp-media upload of the fake (see docs/protocol-notes.md, 'Chunked upload'), as a mixin of ``Rules``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._openws_common import FakeErrcode, Rejected, integer, param, string, within_rate

if TYPE_CHECKING:
    from ._state import BotState

__all__ = ["Media", "UploadRules"]

UPLOAD_TYPES = frozenset({"file", "image", "voice", "video"})
MAX_CHUNK_BYTES = 512 * 1024  # before base64
MAX_CHUNKS = 100
UPLOAD_TTL = 1800.0  # an upload session lives 30 minutes
MEDIA_TTL = 3 * 24 * 3600.0  # the media is valid 3 days


@dataclass(slots=True)
class Upload:
    type: str
    filename: str
    total_size: int
    total_chunks: int
    md5: str | None
    created: float
    chunks: dict[int, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class Media:
    media_id: str
    type: str
    filename: str
    data: bytes
    created: float


class UploadRules:
    """init -> chunks (0-based, any order, re-sends ignored) -> finish -> media_id."""

    rng: random.Random
    rate_limit: bool
    wall: Callable[[float], int]

    def token(self, prefix: str) -> str:
        return f"{prefix}{self.rng.getrandbits(64):016x}"

    def upload_init(
        self, bot: BotState, conn_id: int, req_id: str, body: dict[str, Any], now: float
    ) -> dict[str, Any]:
        mtype = body.get("type")
        if mtype not in UPLOAD_TYPES:
            raise param(f"type must be one of {sorted(UPLOAD_TYPES)}")
        filename = string(body, "filename", default=str(mtype))
        total_size = integer(body, "total_size")
        total_chunks = integer(body, "total_chunks")
        if total_size <= 0:
            raise param("total_size must be positive")
        if not 1 <= total_chunks <= MAX_CHUNKS:
            raise param(f"total_chunks must be in 1..{MAX_CHUNKS}")
        if total_size > total_chunks * MAX_CHUNK_BYTES:
            raise param(f"total_size does not fit in {total_chunks} chunks of 512 KiB")
        md5 = body.get("md5")
        if md5 is not None and not isinstance(md5, str):
            raise param("md5 must be a string")
        if self.rate_limit:  # 30 uploads/min and 1000/h per bot
            within_rate(bot.upload_inits, now, "uploads")
        upload_id = self.token("up-")
        bot.uploads[upload_id] = Upload(mtype, filename, total_size, total_chunks, md5, now)
        return {"upload_id": upload_id}

    @staticmethod
    def _session(bot: BotState, body: dict[str, Any], now: float) -> tuple[str, Upload]:
        upload_id = string(body, "upload_id")
        up = bot.uploads.get(upload_id)
        if up is None:
            raise param(f"unknown upload_id {upload_id!r}")
        if now - up.created > UPLOAD_TTL:
            raise param("upload_id expired (30 minutes after init)")
        return upload_id, up

    def upload_chunk(
        self, bot: BotState, conn_id: int, req_id: str, body: dict[str, Any], now: float
    ) -> None:
        _, up = self._session(bot, body, now)
        index = integer(body, "chunk_index")
        if not 0 <= index < up.total_chunks:  # 0-based, like the Node SDK sends
            raise param(f"chunk_index must be in 0..{up.total_chunks - 1}")
        try:
            data = base64.b64decode(string(body, "base64_data"), validate=True)
        except binascii.Error:
            raise param("base64_data is not base64") from None
        if len(data) > MAX_CHUNK_BYTES:
            raise Rejected(
                FakeErrcode.CONTENT_TOO_LONG,
                f"content size out of limit: chunk is {len(data)} bytes, at most {MAX_CHUNK_BYTES}",
            )
        up.chunks.setdefault(index, data)  # a re-sent chunk is ignored (idempotent)

    def upload_finish(
        self, bot: BotState, conn_id: int, req_id: str, body: dict[str, Any], now: float
    ) -> dict[str, Any]:
        upload_id, up = self._session(bot, body, now)
        missing = [i for i in range(up.total_chunks) if i not in up.chunks]
        if missing:
            raise param(f"missing chunks {missing}")
        data = b"".join(up.chunks[i] for i in range(up.total_chunks))
        if len(data) != up.total_size:
            raise param(f"received {len(data)} bytes, total_size is {up.total_size}")
        if up.md5 is not None and hashlib.md5(data).hexdigest() != up.md5.lower():
            raise param("md5 does not match the uploaded bytes")
        del bot.uploads[upload_id]
        media_id = self.token("media-")
        bot.media[media_id] = Media(media_id, up.type, up.filename, data, now)
        return {"type": up.type, "media_id": media_id, "created_at": str(self.wall(now))}
