"""What a watcher of a run hears as its steps go (the CLI prints these on stderr)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepEvent:
    """Progress for whoever watches a run (the CLI prints these on stderr)."""

    step: str
    status: str  # started | reused | retrying | completed | failed | skipped | canceled
    attempt: int = 0
    detail: str | None = None
    duration: float | None = None
