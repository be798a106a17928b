"""The ``wecom-actors`` command (docs/index.md, "Command line").

::

    wecom-actors run   [--mode long-connection|webhook] [--handler echo|openai|package.module:callable]
                       [--config FILE] [--log-level L] [--host H] [--port P]
    wecom-actors run   --config FLEET.toml    # a file with [[bots]] tables: many bots
    wecom-actors demo  [--mode long-connection|webhook] [--handler echo|openai]
    wecom-actors fake-server [--mode M] [--host H] [--port P] [--bot-id ID] [--secret S]
                       [--control-host H] [--control-port P] [--tls-ca-file PATH]
                       [--bot-url URL --token T --encoding-aes-key K]   (webhook mode)
    wecom-actors chat  [--mode long-connection|webhook] [--handler echo|openai|package.module:callable]
                       [--control-host H] [--control-port P]

Settings come from flags, else the environment (``WECOM_*``), else the config file, else the
defaults (see :mod:`wecom_actors.config`). Exit codes: 0 clean shutdown, 2 bad or missing settings
(the message names the setting), 3 authentication refused, 4 replaced by another connection of the
same bot. Secrets are never printed.

The runtime is reached only through the seams :func:`_serve`, :func:`_demo` and
:func:`_fake_server`; everything before them (parsing, settings, handler lookup) is final.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ._logging import mask_secrets, register_secret, setup_logging
from ._version import __version__
from .config import MODES, SECRET_FIELDS, BotConfig
from .errors import ConfigError, TerminalError
from .fleet_config import FleetConfig, is_fleet_file
from .handlers.loading import load_handler

__all__ = ["EXIT_AUTH", "EXIT_CONFIG", "EXIT_ERROR", "EXIT_KICKED", "EXIT_OK", "main"]

PROG = "wecom-actors"
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_KICKED = 4

Handler = Callable[..., Any]


def _error(message: str, code: int) -> int:
    print(f"{PROG}: error: {mask_secrets(message)}", file=sys.stderr)
    return code


# --- the seams the runtime plugs into --------------------------------------------------------------


def _serve(config: BotConfig, handler: Handler) -> int:
    """SEAM: run the bot until it stops; return the exit code.

    May raise :class:`~wecom_actors.errors.TerminalError` (``AuthError``, ``KickedOut``, ...):
    :func:`main` turns it into the error's ``exit_code``. One bot is a fleet of one, so the admin
    listener, the logs and the metrics are the same as for many.
    """
    return _serve_fleet(FleetConfig.single(config, handler))


def _serve_fleet(fleet: FleetConfig) -> int:
    """SEAM: run every bot of ``fleet`` until a signal (0) or until none is left (raises the last
    bot's TerminalError)."""
    import trio

    from .fleet import run_fleet_until_signal

    return trio.run(run_fleet_until_signal, fleet)


def _demo(args: argparse.Namespace) -> int:
    """SEAM: the bundled fake WeCom + the echo bot + a scripted conversation; print the transcript."""
    import trio

    if getattr(args, "handler", "echo") == "openai":
        from .demo_llm import llm_demo

        return trio.run(llm_demo)
    if args.mode == "webhook":
        from .testing import webhook_demo_transcript

        return trio.run(webhook_demo_transcript)
    from .demo import longconn_demo

    return trio.run(longconn_demo)


def _fake_server(args: argparse.Namespace) -> int:
    """SEAM: serve the bundled fake WeCom on ``args.host``/``args.port`` until interrupted."""
    import trio

    from .demo import run_fake_server
    from .runner import run_cancellable_until_signal

    return trio.run(
        run_cancellable_until_signal,
        lambda: run_fake_server(
            host=args.host, port=args.port, bot_id=args.bot_id, secret=args.secret,
            control_host=args.control_host, control_port=args.control_port,
            mode=args.mode or "long-connection", bot_url=args.bot_url, token=args.token,
            encoding_aes_key=args.encoding_aes_key, tls_ca_file=args.tls_ca_file,
        ),
    )


def _chat(args: argparse.Namespace, handler: Handler) -> int:
    """SEAM: the fake, the bot with ``handler``, the control API and the simulator page."""
    import trio

    from .demo import run_chat
    from .runner import run_cancellable_until_signal

    return trio.run(
        run_cancellable_until_signal,
        lambda: run_chat(handler, mode=args.mode or "long-connection",
                         control_host=args.control_host, control_port=args.control_port),
    )


# --- commands --------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    flags = {"mode": args.mode, "log_level": args.log_level, "host": args.host, "port": args.port}
    fleet: FleetConfig | None = None
    try:
        if args.config is not None and is_fleet_file(args.config):
            if args.handler is not None:
                raise ConfigError("--handler", "a fleet file names each bot's handler in its [[bots]] table")
            fleet = FleetConfig.from_toml(args.config, flags=flags)
            config = fleet.process
        else:
            config = BotConfig.load(flags=flags, config_file=args.config)
    except ConfigError as exc:
        return _error(str(exc), EXIT_CONFIG)
    for bot_config in [b.config for b in fleet.bots] if fleet is not None else [config]:
        for name in sorted(SECRET_FIELDS):
            register_secret(getattr(bot_config, name))
    setup_logging(config.log_level, config.log_format)
    if fleet is None:
        try:  # after the logging setup: a handler may log while it is built (openai: which model)
            handler = load_handler(args.handler or "echo", config_file=args.config)
            FleetConfig.single(config, handler)  # the process-wide checks (admin_port vs port)
        except ConfigError as exc:
            return _error(str(exc), EXIT_CONFIG)
    try:
        return _serve_fleet(fleet) if fleet is not None else _serve(config, handler)
    except TerminalError as exc:
        return _error(str(exc) or type(exc).__name__, exc.exit_code)


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.handler == "openai" and args.mode == "webhook":
        return _error("demo --handler openai runs in long-connection mode only", EXIT_CONFIG)
    return _demo(args)


def _cmd_fake_server(args: argparse.Namespace) -> int:
    for secret in (args.secret, args.token, args.encoding_aes_key):
        if secret:
            register_secret(secret)
    if args.mode == "webhook":
        for flag in ("bot_url", "token", "encoding_aes_key"):
            if not getattr(args, flag):
                name = "--" + flag.replace("_", "-")
                return _error(f"{name}: webhook mode needs it (the bot's callback URL and secrets)", EXIT_CONFIG)
    return _fake_server(args)


def _cmd_chat(args: argparse.Namespace) -> int:
    setup_logging(args.log_level or "WARNING")
    try:  # after the logging setup: a handler may log while it is built (openai: which model)
        handler = load_handler(args.handler)
    except ConfigError as exc:
        return _error(str(exc), EXIT_CONFIG)
    return _chat(args, handler)


def _add_control_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--control-host", default="127.0.0.1",
                        help="control API and simulator page host (default: 127.0.0.1)")
    parser.add_argument("--control-port", type=int, default=0,
                        help="control API and simulator page port (default: 0, a free port)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A Trio-native runtime for WeCom (企业微信) AI Bots.",
        epilog="Settings: flags, else WECOM_* environment variables, else --config, else defaults.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a bot", description="Run a bot until interrupted.")
    run.add_argument("--mode", choices=MODES, help="default: WECOM_MODE, else inferred")
    run.add_argument(
        "--handler",
        metavar="echo|openai|package.module:callable",
        help="the handler (default: the built-in echo; openai: see docs/llm.md); imported from the current folder too",
    )
    run.add_argument(
        "--config", metavar="FILE", help="a TOML file of settings, or a fleet file with [[bots]] tables"
    )
    run.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR, CRITICAL")
    run.add_argument("--host", help="webhook listen host (WECOM_HOST)")
    run.add_argument("--port", metavar="PORT", help="webhook listen port (WECOM_PORT)")
    run.set_defaults(func=_cmd_run)

    demo = sub.add_parser(
        "demo", help="fake WeCom + echo bot + a scripted conversation, no credentials"
    )
    demo.add_argument("--mode", choices=MODES, help="default: long-connection")
    demo.add_argument(
        "--handler",
        choices=("echo", "openai"),
        default="echo",
        help="echo (default), or openai: a model's answers (the bundled fake model without OPENAI_* settings)",
    )
    demo.set_defaults(func=_cmd_demo)

    fake = sub.add_parser("fake-server", help="the bundled fake WeCom, for local development")
    fake.add_argument("--mode", choices=MODES, help="default: long-connection")
    fake.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    fake.add_argument("--port", type=int, default=0, help="default: 0 (a free port)")
    fake.add_argument("--bot-id", help="the one bot id it accepts (default: fake-bot)")
    fake.add_argument("--secret", help="the one secret it accepts (default: fake-secret)")
    fake.add_argument(
        "--tls-ca-file",
        metavar="PATH",
        help="serve wss:// with a throwaway CA and write its certificate (PEM) to PATH",
    )
    fake.add_argument("--bot-url", help="webhook mode: the bot's callback URL")
    fake.add_argument("--token", help="webhook mode: the bot's Token")
    fake.add_argument("--encoding-aes-key", help="webhook mode: the bot's EncodingAESKey")
    _add_control_flags(fake)
    fake.set_defaults(func=_cmd_fake_server)

    chat = sub.add_parser(
        "chat", help="chat with your handler in a browser: fake WeCom + your bot + a web page"
    )
    chat.add_argument("--mode", choices=MODES, help="default: long-connection")
    chat.add_argument(
        "--handler",
        default="echo",
        metavar="echo|openai|package.module:callable",
        help="the handler (default: the built-in echo; openai: see docs/llm.md)",
    )
    chat.add_argument("--log-level", metavar="LEVEL", help="default: WARNING")
    _add_control_flags(chat)
    chat.set_defaults(func=_cmd_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``wecom-actors``; returns the exit code (``--help``/``--version`` exit 0)."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
