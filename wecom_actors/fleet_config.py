"""A fleet: many bots in one process, from a TOML file with ``[[bots]]`` tables or built in code.

::

    admin_port = 9100              # top level: settings for every bot, and the process settings

    [[bots]]
    name = "sales"                 # unique: logs, metric labels
    handler = "echo"               # echo or package.module:callable (default echo)
    bot_id = "..."
    bot_secret = "..."

    [[bots]]
    name = "support"
    token = "..."
    encoding_aes_key = "..."
    callback_path = "/wecom/support"   # webhook bots share one HTTP server, one path each

A bot's settings: the defaults, then the file's top level, then the ``WECOM_*`` environment, then
its ``[[bots]]`` table, then the command-line flags. The process settings (``host``, ``port``,
``admin_port``, ``log_level``, ``log_format``) belong at the top level only: the webhook bots share
one server and the process has one log. Everything is checked before any bot starts; a problem
raises one :class:`~wecom_actors.errors.ConfigError` naming the bot and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from .config import (
    _FIELDS,
    ENV_PREFIX,
    BotConfig,
    _build,
    _check_typed,
    _Layer,
    _read_env,
    _read_flags,
    read_toml_document,
)
from .errors import ConfigError
from .handlers.loading import load_handler

__all__ = ["ADMIN_PATHS", "PROCESS_FIELDS", "FleetBot", "FleetConfig", "is_fleet_file"]

#: Settings of the process, not of one bot: top level only.
PROCESS_FIELDS = ("host", "port", "admin_port", "log_level", "log_format")
#: Paths the admin routes take (on the admin port, and on the webhook server).
ADMIN_PATHS = ("/metrics", "/healthz", "/readyz")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class FleetBot(msgspec.Struct, frozen=True):
    """One bot of a fleet: its unique ``name``, its settings and its handler."""

    name: str
    config: BotConfig
    handler: str | Callable[..., Any] = "echo"


class FleetConfig(msgspec.Struct, frozen=True):
    """Every bot of a fleet and the process settings (taken from the first bot's config when
    built in code: ``FleetConfig([FleetBot(...), ...])``)."""

    bots: list[FleetBot]

    def __post_init__(self) -> None:
        check_fleet(self.bots, "the fleet")

    @property
    def process(self) -> BotConfig:
        """The config that holds the process settings (host, port, admin_port, logs)."""
        return self.bots[0].config

    @classmethod
    def single(cls, config: BotConfig, handler: str | Callable[..., Any] = "echo", *, name: str = "") -> FleetConfig:
        """A fleet of one bot (named after its bot id by default)."""
        from .turnlog import bot_label

        return cls([FleetBot(name or bot_label(config), config, handler)])

    @classmethod
    def from_toml(
        cls,
        path: str | os.PathLike[str],
        *,
        environ: Mapping[str, str] | None = None,
        flags: Mapping[str, object] | None = None,
    ) -> FleetConfig:
        """Load a fleet file (see the module doc); handlers are imported and checked here."""
        shown = os.fspath(path)
        doc = _read(shown)
        tables = doc.pop("bots", None)
        if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
            raise ConfigError(shown, "a fleet file needs one or more [[bots]] tables")
        top = _layer(doc, shown, "top level", allow_process=True)
        env = _read_env(os.environ if environ is None else environ)
        flag_layer = _read_flags(flags or {})
        if "mode" in flag_layer:
            raise ConfigError("--mode", "cannot apply to a fleet file: set mode in each [[bots]] table")
        bots = []
        for i, table in enumerate(tables, 1):
            where = f"{shown}, [[bots]] #{i}"
            name = table.pop("name", None)
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ConfigError(
                    f"{where}, name", f"each bot needs a name: 1-64 of A-Z a-z 0-9 _ . - (got {name!r})"
                )
            where = f"{shown}, bot {name!r}"
            handler = table.pop("handler", "echo")
            if not isinstance(handler, str):
                raise ConfigError(f"{where}, handler", "expected 'echo' or 'package.module:callable'")
            own = _layer(table, shown, f"bot {name!r}", allow_process=False)
            try:
                config = _build([top, env, own, flag_layer])
                load_handler(handler)
            except ConfigError as exc:
                raise ConfigError(f"{where}, {_field(exc.setting)}", _reason(exc)) from None
            bots.append(FleetBot(name, config, handler))
        return cls(bots)


def is_fleet_file(path: str | os.PathLike[str]) -> bool:
    """True if the TOML file has a ``bots`` key (``[[bots]]`` tables); errors are left to the loaders."""
    try:
        with open(path, "rb") as f:
            return "bots" in tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return False


def check_fleet(bots: list[FleetBot], where: str) -> None:
    """Refuse an empty fleet, duplicate names, bot ids or paths, and split process settings."""
    if not bots:
        raise ConfigError(where, "a fleet needs at least one bot")
    first = bots[0].config
    seen: dict[tuple[str, str], str] = {}
    for bot in bots:
        cfg = bot.config
        keys = [("name", bot.name)]
        if cfg.mode == "long-connection":
            keys.append(("bot_id", cfg.bot_id))
        else:
            keys.append(("callback_path", cfg.callback_path))
            if cfg.callback_path in ADMIN_PATHS:
                raise ConfigError(
                    f"{where}, bot {bot.name!r}, callback_path",
                    f"{cfg.callback_path} is taken by the admin routes ({', '.join(ADMIN_PATHS)})",
                )
        for field, value in keys:
            other = seen.get((field, value))
            if other is not None:
                shown = "(hidden)" if field == "bot_id" else repr(value)
                raise ConfigError(
                    f"{where}, bot {bot.name!r}, {field}",
                    f"{field} {shown} is already used by bot {other!r}; each bot needs its own",
                )
            seen[(field, value)] = bot.name
        for field in PROCESS_FIELDS:
            if getattr(cfg, field) != getattr(first, field):
                raise ConfigError(
                    f"{where}, bot {bot.name!r}, {field}",
                    f"differs from bot {bots[0].name!r}: {field} is a process setting, one for all bots",
                )
    webhook = any(b.config.mode == "webhook" for b in bots)
    if webhook and first.admin_port and first.admin_port == first.port:
        raise ConfigError(
            f"{where}, admin_port",
            f"equals the webhook port {first.port}: the admin routes are served there already; "
            "set admin_port to another port or to 0",
        )


def _read(shown: str) -> dict[str, Any]:
    return read_toml_document(shown, "fleet file")


def _layer(table: Mapping[str, Any], shown: str, where: str, *, allow_process: bool) -> _Layer:
    import difflib

    layer: _Layer = {}
    for key, value in table.items():
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, [*_FIELDS, "name", "handler", "bots"], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{shown}, {where}, {key}", f"unknown key{hint}")
        if key in PROCESS_FIELDS and not allow_process:
            raise ConfigError(
                f"{shown}, {where}, {key}",
                f"{key} is a process setting (one for all bots): set it at the top level of the file",
            )
        source = f"{shown}, {where}, key {key!r}"
        try:
            layer[key] = (_check_typed(key, value, source), source)
        except ConfigError as exc:
            raise ConfigError(f"{shown}, {where}, {key}", _reason(exc)) from None
    return layer


def _field(setting: str) -> str:
    """``WECOM_BOT_SECRET`` -> ``bot_secret`` (other settings, e.g. ``--handler``, unchanged)."""
    if setting.startswith(ENV_PREFIX) and setting[len(ENV_PREFIX):].lower() in _FIELDS:
        return setting[len(ENV_PREFIX):].lower()
    return setting.lstrip("-")


def _reason(exc: ConfigError) -> str:
    text = str(exc)
    prefix = f"{exc.setting}: "
    return text[len(prefix):] if text.startswith(prefix) else text
