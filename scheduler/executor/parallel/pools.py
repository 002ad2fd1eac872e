"""What the driver needs of a place that runs mini-batches: the outcome of one ``run()`` call, and
the pool interface that local processes (``local_pool``) and Dask (``dask_pool``) both offer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from scheduler.core.errors import PipeschedError

#: A line of pipesched's own for the step log.
Say = Callable[[str], None]


class InitFailed(PipeschedError):
    """A worker could not import the entry script or its init() raised."""


class SlotRetired(Exception):
    """The slot's worker is gone for good; the driver stops using the slot."""


@dataclass
class Outcome:
    """How one try of one mini-batch ended."""

    kind: Literal["ok", "error", "timeout", "lost", "requeue"]  # requeue: never ran, no try
    worker: str
    count: int = 0  # elements run() returned
    rows: list[str] = field(default_factory=list)  # append_row lines
    error: str | None = None


class Pool(Protocol):
    """Worker slots that each run one mini-batch at a time."""

    slots: int

    async def open(self, batches: int) -> None:
        """Get ready to run ``batches`` mini-batches; sets ``slots``."""

    async def run(self, slot: int, batch: int, files: list[str]) -> Outcome:
        """Run one mini-batch on the slot's worker (starting it, and its init(), if needed).
        Raises InitFailed when a worker cannot start, SlotRetired when the slot has no worker
        any more (the batch was not tried)."""
        ...

    async def close(self, *, abort: bool) -> None:
        """Stop the workers: politely (so ``shutdown()`` runs) or, with ``abort``, at once."""
