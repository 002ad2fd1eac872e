"""structlog set-up: console lines on a terminal, JSON lines otherwise (journald reads them).

Under systemd every line starts with its syslog priority (``<3>`` error ... ``<7>`` debug), which
journald strips and stores as the entry's priority, so ``journalctl -u pipesched -p warning`` filters
and colours with no journald library. Records of libraries that log through the standard
``logging`` module (APScheduler, uvicorn, alembic) and Python warnings go through the same renderer.

Import cost: ``import structlog`` itself imports ``structlog.dev`` and with it rich and pygments
(~90 of its ~115 ms on the reference machine) whatever renderer is chosen; structlog offers no lazy
import, so this module adds nothing on top and picks the console renderer only when it is used.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# syslog priorities (sd-daemon(3) SD_ERR ... SD_DEBUG) by structlog level name.
_PRIORITY = {
    "critical": 2,
    "fatal": 2,
    "exception": 3,
    "error": 3,
    "warning": 4,
    "warn": 4,
    "info": 6,
    "debug": 7,
}

# Libraries that say too much at INFO for a daemon's log (APScheduler: two lines per fire).
# APScheduler logs two INFO lines per fire; Alembic a dozen per start-up; uvicorn its banner.
_QUIET_LIBRARIES = {
    "apscheduler": logging.WARNING,
    "alembic": logging.WARNING,
    "uvicorn.error": logging.WARNING,
}


def stream_is_journal(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """True when ``stream`` is the journald connection systemd gave us.

    Compares $JOURNAL_STREAM's ``device:inode`` with the stream's, as systemd.exec(5) asks: the
    variable alone is inherited by processes whose output went elsewhere (a step's log file, a
    shell's redirection), and those must not get ``<6>`` prefixes.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError):  # unset, malformed, or a stream without a file descriptor
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def _with_priority(renderer: structlog.typing.Processor) -> structlog.typing.Processor:
    """Wrap a renderer so each line of its output starts with the entry's syslog priority."""

    def render(logger: Any, method_name: str, event_dict: structlog.typing.EventDict) -> str:
        level = str(event_dict.get("level", method_name)).lower()
        prefix = f"<{_PRIORITY.get(level, 6)}>"
        text = str(renderer(logger, method_name, event_dict))
        # A console traceback spans lines; journald makes each line an entry of its own.
        return prefix + text.replace("\n", "\n" + prefix)

    return render


def _renderer(fmt: str, stream: TextIO) -> structlog.typing.Processor:
    if fmt == "console":
        from structlog.dev import ConsoleRenderer

        colors = stream.isatty() and not os.environ.get("NO_COLOR")
        return ConsoleRenderer(colors=colors)
    return structlog.processors.JSONRenderer()


def stderr_logger(level: str = "warning") -> Any:
    """A logger writing to stderr at ``level`` as ``configure_logging`` would, for a process
    that never configured logging; structlog's own configuration is left as it is."""
    stream = sys.stderr
    renderer = _renderer("console" if stream.isatty() else "json", stream)
    return structlog.wrap_logger(
        structlog.PrintLogger(file=stream),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.WARNING)),
    )


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Log to stderr at ``level``; ``fmt`` is auto | console | json (auto: console on a TTY)."""
    stream = sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer = _renderer(fmt, stream)
    if stream_is_journal(stream):
        renderer = _with_priority(renderer)
    threshold = _LEVELS.get(level, logging.INFO)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(threshold, shared, renderer, stream)


def _route_stdlib(
    threshold: int,
    shared: list[structlog.typing.Processor],
    renderer: structlog.typing.Processor,
    stream: TextIO,
) -> None:
    """Send the standard ``logging`` records through the same renderer, on the same stream."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name("pipesched")
    root = logging.getLogger()
    # Replace only our own handler: others (pytest's capture, an embedding app's) stay.
    for old in [h for h in root.handlers if h.get_name() == "pipesched"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name, floor in _QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(floor, threshold))
    logging.captureWarnings(True)
