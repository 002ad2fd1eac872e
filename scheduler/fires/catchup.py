"""What to do with fire times missed while the daemon was down (or asleep, or the clock jumped):
the schedule's ``catchup`` rule, as a pure function.

- ``none``: every missed time is recorded ``missed: catch-up rule``; nothing runs.
- ``latest`` (default, like systemd's ``Persistent=true``): the newest missed time runs; the
  others are recorded missed.
- ``all``: the newest ``catchup_limit`` missed times run, oldest first; older ones are missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CatchupDecision:
    run: list[datetime]
    missed: list[datetime]


def decide(missed_times: list[datetime], rule: str, limit: int) -> CatchupDecision:
    """``missed_times`` oldest first."""
    if not missed_times or rule == "none":
        return CatchupDecision(run=[], missed=list(missed_times))
    keep = 1 if rule == "latest" else max(0, limit)
    if keep == 0:
        return CatchupDecision(run=[], missed=list(missed_times))
    return CatchupDecision(run=missed_times[-keep:], missed=missed_times[:-keep])
