"""Webhook mode: encrypted HTTP callbacks answered by the WebhookServer actor (docs/webhook.md).

The bot is :class:`~wecom_actors.webhook.bot.WebhookBot`; ``serve_bot`` picks it when
``config.mode == "webhook"``.
"""

from .app import WebhookApp, parse_query
from .bot import WebhookBot, WebhookStatistics
from .response_url import ResponseUrls, cut_with_notice
from .server import WebhookServer

__all__ = [
    "ResponseUrls",
    "WebhookApp",
    "WebhookBot",
    "WebhookServer",
    "WebhookStatistics",
    "cut_with_notice",
    "parse_query",
]
