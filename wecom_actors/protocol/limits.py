"""Protocol limits of both modes (see docs/protocol-notes.md), in one place."""

from __future__ import annotations

#: Stream and markdown content, UTF-8 bytes.
MAX_CONTENT_BYTES = 20480
#: feedback.id, UTF-8 bytes.
MAX_FEEDBACK_ID_BYTES = 256
#: Images in a stream's msg_item, and each image's raw size.
MAX_MSG_ITEMS = 10
MAX_MSG_ITEM_IMAGE_BYTES = 10 * 1024 * 1024
#: A stream must finish within this many seconds of its first frame.
STREAM_WINDOW_SECONDS = 360.0
#: Welcome and card-update replies must be sent within this many seconds of the event.
EVENT_REPLY_WINDOW_SECONDS = 5.0
#: Media URLs in callbacks stay valid this long.
MEDIA_URL_TTL_SECONDS = 300.0
#: response_url: usable once, for this long.
RESPONSE_URL_TTL_SECONDS = 3600.0
#: Chunked upload.
MAX_UPLOAD_CHUNK_BYTES = 512 * 1024
MAX_UPLOAD_CHUNKS = 100
UPLOAD_SESSION_TTL_SECONDS = 1800.0
#: Media message kinds, and a video message's title/description (truncated to these).
MEDIA_KINDS = ("file", "image", "voice", "video")
MAX_VIDEO_TITLE_BYTES = 128
MAX_VIDEO_DESCRIPTION_BYTES = 512
#: Per-conversation send rate (replies and pushes together).
SENDS_PER_MINUTE = 30
SENDS_PER_HOUR = 1000
#: Template cards.
MAX_BUTTONS = 6
MAX_TASK_ID_BYTES = 128
#: Webhook: at most this many messages of one user in flight.
MAX_INFLIGHT_PER_USER = 3
#: Inbound file size WeCom delivers (webhook doc).
MAX_INBOUND_FILE_BYTES = 100 * 1024 * 1024


class ErrCode:
    """errcodes seen in acks (none but 0 is official; see docs/protocol-notes.md, 'Error codes')."""

    OK = 0
    CONFLICT = 6000  # a second frame for a req_id while the first is in flight
    INVALID_REQ_ID = 846605  # stale or wrong req_id for this command
    STREAM_EXPIRED = 846608  # the fake's code for a frame after the 6-minute window
    NOT_SUBSCRIBED = 846609  # command before subscribe / after the subscription was lost
    DEVICE_NOT_SUPPORTED = 600039
    INVALID_SECRET = 600041
    RATE_LIMITED = 45009
