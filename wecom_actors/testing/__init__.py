"""Test your WeCom bot without WeCom: a fake long-connection server, like ``trio.testing``.

::

    from wecom_actors.testing import open_fake_wecom

    async def test_my_bot():
        async with open_fake_wecom() as fake:
            ...  # start the bot against fake.url with fake.bot_id / fake.secret
            await fake.wait_subscribed()
            cb = await fake.send_text("hi")
            with trio.fail_after(5):
                view = await fake.wait_stream_finished(cb.req_id)
            assert view.content == "Hello!"

See ``docs/testing-fake-openws.md`` for the guide, the rules the fake enforces and its errcodes.
"""

from ._openws import FakeWeCom, NotConnected, open_fake_wecom, serve_fake_openws
from ._openws_faults import FaultInjector
from ._openws_records import (
    Bubble,
    BubbleKind,
    Callback,
    FakeStatistics,
    RecordedFrame,
    StreamView,
    UploadedMedia,
)
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
    "Bubble",
    "BubbleKind",
    "Callback",
    "FakeErrcode",
    "FakeStatistics",
    "FakeWeCom",
    "FakeWebhookErrcode",
    "FakeWebhookWeCom",
    "FaultInjector",
    "NotConnected",
    "RecordedFrame",
    "ResponseUrlPost",
    "StreamView",
    "UploadedMedia",
    "VerifyResult",
    "WebhookConformanceError",
    "WebhookView",
    "open_fake_webhook",
    "open_fake_wecom",
    "serve_fake_openws",
    "webhook_demo_transcript",
]
