"""Test your WeCom bot without WeCom: a fake long-connection server, like ``trio.testing``.

::

    from wecom_actors.testing import open_fake_wecom

    async def test_my_bot():
        async with open_fake_wecom() as fake:
            ...  # start the bot against fake.url with fake.bot_id / fake.secret
            await fake.wait_subscribed()
            cb = await fake.send_text("hi")
            view = await fake.wait_stream_finished(cb.req_id, timeout=5)
            assert view.content == "Hello!"

See ``docs/testing-fake-openws.md`` for the guide, the rules the fake enforces and its errcodes.
``FakeWebhookWeCom`` plays WeCom against a webhook bot. ``serve_control_api`` serves either fake
(through ``LongConnSimulator`` / ``WebhookSimulator``) over HTTP + JSON with a chat page, for
bots in any language and for people: ``docs/testing-control-api.md``.
"""

from ._control_app import serve_control_api
from ._control_longconn import LongConnSimulator
from ._control_sims import Simulator
from ._control_webhook import WebhookSimulator
from ._openws import (
    CLOSE_CAUSES,
    DEFAULT_CLOSE_CODES,
    FakeWeCom,
    NotConnected,
    open_fake_wecom,
    serve_fake_openws,
)
from ._openws_faults import FaultInjector
from ._openws_records import (
    Bubble,
    BubbleKind,
    Callback,
    ConnectionView,
    FakeStatistics,
    RecordedFrame,
    StreamView,
    UploadedMedia,
)
from ._openws_tls import FakeTLS
from ._openws_views import DEFAULT_WAIT
from ._state import FakeErrcode
from ._webhook import (
    FakeWebhookErrcode,
    FakeWebhookWeCom,
    ResponseUrlPost,
    VerifyResult,
    WebhookConformanceError,
    WebhookView,
    open_fake_webhook,
    webhook_demo_transcript,
)

__all__ = [
    "CLOSE_CAUSES",
    "DEFAULT_CLOSE_CODES",
    "DEFAULT_WAIT",
    "Bubble",
    "BubbleKind",
    "Callback",
    "ConnectionView",
    "FakeErrcode",
    "FakeStatistics",
    "FakeTLS",
    "FakeWeCom",
    "FakeWebhookErrcode",
    "FakeWebhookWeCom",
    "FaultInjector",
    "LongConnSimulator",
    "NotConnected",
    "RecordedFrame",
    "ResponseUrlPost",
    "Simulator",
    "StreamView",
    "UploadedMedia",
    "VerifyResult",
    "WebhookConformanceError",
    "WebhookSimulator",
    "WebhookView",
    "open_fake_webhook",
    "open_fake_wecom",
    "serve_control_api",
    "serve_fake_openws",
    "webhook_demo_transcript",
]
