"""Loading a handler from a command-line spec: ``echo``, ``openai`` or ``package.module:callable``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError

__all__ = ["ECHO_HANDLER", "load_handler"]

#: ``--handler echo`` means this built-in, imported only when it is needed.
ECHO_HANDLER = "wecom_actors.handlers.echo:echo"


def load_handler(spec: str, *, config_file: str | os.PathLike[str] | None = None) -> Callable[..., Any]:
    """``echo``, ``openai`` or ``package.module:callable`` (the attribute may be dotted) -> the
    callable. ``openai`` is built from its settings (environment, and ``config_file``'s ``[llm]``).

    The module is looked up in the current folder too (as ``python -m`` does), so
    ``--handler mybot:handler`` works from the folder that holds ``mybot.py``.

    Raises :class:`ConfigError` naming ``--handler`` when the spec is malformed, the module does
    not import, the attribute is missing or is not callable (and naming the setting when one of
    the ``openai`` handler's settings is invalid).
    """
    if spec == "openai":
        return _openai(config_file)
    target = ECHO_HANDLER if spec == "echo" else spec
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(
            "--handler",
            f"{spec!r} is not 'echo', 'openai' or 'package.module:callable' (colon missing?)",
        )
    _import_from_cwd()
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError("--handler", f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the user's module failed while importing: report, do not trace
        raise ConfigError(
            "--handler", f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                "--handler", f"module {module_name!r} has no attribute {attr!r}"
            ) from None
    if not callable(obj):
        raise ConfigError("--handler", f"{target!r} is a {type(obj).__name__}, not a callable")
    handler: Callable[..., Any] = obj
    return handler


def _openai(config_file: str | os.PathLike[str] | None) -> Callable[..., Any]:
    try:
        from .openai import from_cli
    except ImportError as exc:  # a dependency of the handler is missing from this installation
        raise ConfigError(
            "--handler",
            f"the openai handler cannot be imported ({exc}); "
            "reinstall with: pip install --force-reinstall wecom-actors",
        ) from None
    return from_cli(config_file=config_file)


def _import_from_cwd() -> None:
    """Put the current folder first on ``sys.path`` (once), as ``python -m`` and uvicorn do."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
