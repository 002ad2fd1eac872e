"""What the driver needs of a place that runs mini-batches: the outcome of one ``run()`` call, and
the pool interface that local processes (``local_pool``) and Dask (``dask_pool``) both offer."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from scheduler.core.errors import PipeschedError

#: A line of pipesched's own for the step log.
Say = Callable[[str], None]


class InitFailed(PipeschedError):
    """A worker could not import the entry script or its init() raised."""


class SlotRetired(Exception):
    """The slot's worker is gone for good; the driver stops using the slot."""


@dataclass
class MiniBatch:
    """What one ``run()`` call gets: file paths, or pieces of tabular files (``{"path",
    "start", "end"}``) that the worker reads into one DataFrame; with ``partition_keys``, the
    partition's key values (Azure's ``mini_batch_context.partition_key_value``)."""

    items: list[Any]
    partition: dict[str, str] | None = None
    tabular: bool = False
    rows: int | None = None  # a tabular mini-batch's records, once a worker has read them

    def label(self) -> str:
        if self.partition is not None:
            return ", ".join(f"{k}={v}" for k, v in self.partition.items())
        first = self.items[0] if self.items else ""
        if isinstance(first, dict):
            start, end = first.get("start", 0), first.get("end")
            span = f"[{start}:{'' if end is None else end}]" if start or end is not None else ""
            first = os.path.basename(first["path"]) + span
        else:
            first = os.path.basename(first)
        return first + (f" +{len(self.items) - 1}" if len(self.items) > 1 else "")


@dataclass
class Outcome:
    """How one try of one mini-batch ended."""

    kind: Literal["ok", "error", "timeout", "lost", "requeue"]  # requeue: never ran, no try
    worker: str
    count: int = 0  # elements run() returned
    items: int | None = None  # records the worker read (a tabular mini-batch)
    rows: list[str] = field(default_factory=list)  # append_row lines
    error: str | None = None


#: Mini-batches for one ``Pool.run`` call, each with its index in the input's order.
Chunk = list[tuple[int, MiniBatch]]


def chunk_size(batches: int, lanes: int, most: int) -> int:
    """Mini-batches per ``run`` call: up to ``most`` (fewer messages, fewer round trips), but
    small enough that every lane gets at least eight calls and the last ones finish together."""
    return max(1, min(most, batches // (max(1, lanes) * 8)))


class Dispatcher(Protocol):
    """What a pool needs of the driver (``driver.Driver``)."""

    batches: list[MiniBatch]

    def announce(self, workers: str) -> None:
        """The plan's line in the step log, once the pool knows its ``workers``."""

    def waiting(self) -> int:
        """Mini-batches not handed to any worker yet."""
        ...

    def take(self, most: int) -> list[int]:
        """Up to ``most`` mini-batches to run next; each counts one try."""
        ...

    def give_back(self, batches: list[int]) -> None:
        """Mini-batches that did not run: run them later, no try counted."""

    def settle(self, batches: list[int], outcomes: list[Outcome]) -> None:
        """Record each mini-batch's outcome; raises when error_threshold is exceeded."""

    def progress(self, force: bool = False) -> None:
        """A progress line in the step log (at most every few seconds unless forced)."""


class Pool(Protocol):
    """Workers that run every mini-batch the driver has, a chunk at a time per worker thread,
    one ``run()`` after another; every mini-batch keeps its own outcome (and its own
    ``run_invocation_timeout``)."""

    def run_all(self, driver: Dispatcher) -> None:
        """Start the workers, run mini-batches until the driver has none left (or no worker is
        left), print the final progress line and stop the workers: politely (so ``shutdown()``
        runs) or, when something raised (InitFailed, the driver's ThresholdExceeded), at once."""
