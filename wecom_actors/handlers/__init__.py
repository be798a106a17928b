"""Handlers: the Turn API and the built-in handlers."""

from .turn import Handler, Turn, as_handler

__all__ = ["Handler", "Turn", "as_handler"]
