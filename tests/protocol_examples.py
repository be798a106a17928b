"""The JSON examples of both protocols' documentation, as test data for the protocol tests (``test_protocol_*``).

The test data are the JSON examples of WeCom's long-connection docs and webhook docs (the
official pages, plus the frames of the usual conformance scenarios), copied as the docs show them.
Each is labelled in a comment by what it is. Where the docs show only
a fragment (``"event": {...}``) it is wrapped in the smallest complete body, and ``…``/``...``
placeholders are replaced by concrete values; everything else is verbatim.

They live in three modules: :mod:`.protocol_examples_ws` (frames and callback bodies of the long
connection), :mod:`.protocol_examples_webhook` (callback bodies of webhook mode) and
:mod:`.protocol_examples_replies` (reply and request bodies). This one holds what the tests share
across them.
"""

from __future__ import annotations

import json
from typing import Any

from .protocol_examples_webhook import WH_CALLBACKS
from .protocol_examples_ws import WS_CALLBACKS, C

__all__ = ["CALLBACKS", "parsed"]

#: Every callback body example of both protocols' docs (stage two), the long connection's first.
CALLBACKS: dict[str, C] = {**WS_CALLBACKS, **WH_CALLBACKS}


def parsed(data: bytes | str) -> Any:
    """The JSON value of ``data``, parsed by the stdlib (an independent parser)."""
    return json.loads(data)
