"""wecom_actors: a Trio-native, actor-based runtime for WeCom (企业微信) AI Bots.

This namespace only re-exports the public API; the code lives in the modules.
"""

from . import cards
from ._version import __version__
from .bot import BotHandle, BotStatistics, open_bot, serve_bot
from .cards import CardError
from .config import BotConfig
from .errors import (
    AckError,
    AckTimeout,
    AuthError,
    ConfigError,
    ConnectionLost,
    CryptoError,
    FrameError,
    KickedOut,
    MediaError,
    OutcomeUnknown,
    Overloaded,
    ProtocolError,
    ReplyFailed,
    RequestError,
    RestartIntensityExceeded,
    StaleReply,
    TerminalError,
    WeComError,
)
from .fleet import FleetBot, FleetConfig, FleetHandle, serve_fleet
from .handlers.echo import echo
from .handlers.turn import Turn
from .longconn.upload import UploadError, UploadResult
from .protocol.inbound import (
    DisconnectedEvent,
    EnterChatEvent,
    EventMessage,
    FeedbackEvent,
    FileMessage,
    ImageMessage,
    InboundMessage,
    MixedMessage,
    TemplateCardEvent,
    TextMessage,
    UnknownEvent,
    UnknownMessage,
    VideoMessage,
    VoiceMessage,
)
from .protocol.replies import TemplateCard
from .ratelimit import RateLimiter, RateLimiterStatistics
from .sessions import ReplyStream
from .turnlog import TurnStatistics

__all__ = [
    "AckError",
    "AckTimeout",
    "AuthError",
    "BotConfig",
    "BotHandle",
    "BotStatistics",
    "CardError",
    "ConfigError",
    "ConnectionLost",
    "CryptoError",
    "DisconnectedEvent",
    "EnterChatEvent",
    "EventMessage",
    "FeedbackEvent",
    "FileMessage",
    "FleetBot",
    "FleetConfig",
    "FleetHandle",
    "FrameError",
    "ImageMessage",
    "InboundMessage",
    "KickedOut",
    "MediaError",
    "MixedMessage",
    "OutcomeUnknown",
    "Overloaded",
    "ProtocolError",
    "RateLimiter",
    "RateLimiterStatistics",
    "ReplyFailed",
    "ReplyStream",
    "RequestError",
    "RestartIntensityExceeded",
    "StaleReply",
    "TemplateCard",
    "TemplateCardEvent",
    "TerminalError",
    "TextMessage",
    "Turn",
    "TurnStatistics",
    "UnknownEvent",
    "UnknownMessage",
    "UploadError",
    "UploadResult",
    "VideoMessage",
    "VoiceMessage",
    "WeComError",
    "__version__",
    "cards",
    "echo",
    "open_bot",
    "serve_bot",
    "serve_fleet",
]
