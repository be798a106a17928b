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
from .handlers.echo import echo
from .handlers.turn import Turn
from .longconn.upload import UploadError, UploadResult
from .ratelimit import RateLimiter, RateLimiterStatistics

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
    "FrameError",
    "KickedOut",
    "MediaError",
    "OutcomeUnknown",
    "Overloaded",
    "ProtocolError",
    "RateLimiter",
    "RateLimiterStatistics",
    "ReplyFailed",
    "RequestError",
    "RestartIntensityExceeded",
    "StaleReply",
    "TerminalError",
    "Turn",
    "UploadError",
    "UploadResult",
    "WeComError",
    "__version__",
    "cards",
    "echo",
    "open_bot",
    "serve_bot",
]
