"""A structlog logger that imports structlog on its first call, not on import.

``import structlog`` costs ~100 ms (it imports rich); modules that a foreground ``pipesched run``
imports on its way to the first step log only on rare paths, so they hold one of these instead.
A process that never configured structlog when the line comes (a lean command path) writes it
with pipesched's own renderer at ``warning``, on stderr (never structlog's default, which prints
to stdout), without configuring structlog for the whole process.
"""

from __future__ import annotations

from typing import Any


class LazyLogger:
    """Stands for ``structlog.get_logger(name)``; supports the calls our modules make."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        import structlog  # lazy: the point of this class

        if not structlog.is_configured():
            from scheduler.core.logging import stderr_logger  # lazy: imports structlog

            return getattr(stderr_logger(), attribute)
        return getattr(structlog.get_logger(self._name), attribute)


def lazy_logger(name: str) -> Any:
    """A logger for ``name`` whose structlog import waits for its first line."""
    return LazyLogger(name)
