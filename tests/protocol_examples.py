"""The JSON examples of both specs, as test data for the protocol tests (``test_protocol_*``).

The test data are the JSON examples of ``shared/spec/ws-protocol.md`` (``WS §``) and
``shared/spec/webhook-protocol.md`` (``WH §``), copied from the spec text. Where the spec shows only
a fragment (``"event": {...}``) it is wrapped in the smallest complete body, and ``…``/``...``
placeholders are replaced by concrete values; everything else is verbatim.

They live in three modules, re-exported here: :mod:`.protocol_examples_ws` (frames and callback
bodies of the long connection), :mod:`.protocol_examples_webhook` (callback bodies of webhook
mode) and :mod:`.protocol_examples_replies` (reply and request bodies).
"""

from __future__ import annotations

import json
from typing import Any

from .protocol_examples_replies import (
    ALERT_CARD,
    BUTTON_CARD,
    CARD_EXAMPLES,
    CONFIRMED_CARD,
    IMAGE_ITEM,
    REPLY_CASES,
    REQUEST_BODY_CASES,
    SEND_MSG_CASES,
    UPDATE_CASES,
)
from .protocol_examples_webhook import MSGID, MSGID_ESCAPED, WH_CALLBACKS, WH_TEXT
from .protocol_examples_ws import WS_CALLBACKS, WS_FRAMES, C, F

__all__ = [
    "ALERT_CARD",
    "BUTTON_CARD",
    "CALLBACKS",
    "CARD_EXAMPLES",
    "CONFIRMED_CARD",
    "IMAGE_ITEM",
    "MSGID",
    "MSGID_ESCAPED",
    "REPLY_CASES",
    "REQUEST_BODY_CASES",
    "SEND_MSG_CASES",
    "UPDATE_CASES",
    "WH_TEXT",
    "WS_FRAMES",
    "C",
    "F",
    "parsed",
]

#: Every callback body example of both specs (stage two), the long connection's first.
CALLBACKS: dict[str, C] = {**WS_CALLBACKS, **WH_CALLBACKS}


def parsed(data: bytes | str) -> Any:
    """The JSON value of ``data``, parsed by the stdlib (an independent parser)."""
    return json.loads(data)
