"""The config sections for leaving a daemon alone for months: ``retention`` and ``notify``.

Plain dataclasses, so the lean read path builds them without pydantic; the schema that checks
them lives in ``config_schema``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

NotifyEvent = Literal["failed", "missed", "store_unwritable", "recovered"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = ("failed", "missed", "store_unwritable", "recovered")

DAY = 86400.0


@dataclass(frozen=True)
class RetentionConfig:
    """What a prune deletes: runs older than ``runs`` seconds (None: no age limit), except the
    newest ``keep_last`` of each pipeline (and the runs kept runs reused from); then, while the
    state is larger than ``max_state_bytes`` (None: no limit), the oldest runs beyond those."""

    runs: float | None = 90 * DAY
    keep_last: int = 20
    max_state_bytes: int | None = None


@dataclass(frozen=True)
class NotifyTarget:
    """Where events of the kinds in ``on`` go: a command (argv; the event as JSON on stdin) or a
    webhook (a JSON POST, signed with HMAC-SHA256 when ``secret`` is set). ``command``,
    ``webhook`` and ``secret`` may hold ``${{env.NAME}}`` / ``${{file:PATH}}`` references,
    resolved only when an event is sent."""

    on: tuple[NotifyEvent, ...]
    command: tuple[str, ...] | None = None
    webhook: str | None = None
    secret: str | None = None
    timeout: float = 10.0
    retries: int = 5


DEFAULT_RETENTION: dict[str, Any] = {"runs": RetentionConfig.runs, "keep_last": 20,
                                     "max_state_bytes": None}  # fmt: skip


def retention_from(raw: dict[str, Any]) -> RetentionConfig:
    return RetentionConfig(
        runs=raw["runs"], keep_last=raw["keep_last"], max_state_bytes=raw["max_state_bytes"]
    )


def notify_from(raw: list[dict[str, Any]]) -> tuple[NotifyTarget, ...]:
    return tuple(
        NotifyTarget(
            on=tuple(entry["on"]),
            command=None if entry.get("command") is None else tuple(entry["command"]),
            webhook=entry.get("webhook"),
            secret=entry.get("secret"),
            timeout=entry.get("timeout", NotifyTarget.timeout),
            retries=entry.get("retries", NotifyTarget.retries),
        )
        for entry in raw
    )
