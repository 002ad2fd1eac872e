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


class Pool(Protocol):
    """Worker slots that each run a chunk of mini-batches at a time, one ``run()`` after another;
    every mini-batch keeps its own outcome (and its own ``run_invocation_timeout``)."""

    slots: int
    chunk: int  # mini-batches per ``run`` call, at most

    async def open(self, batches: int) -> None:
        """Get ready to run ``batches`` mini-batches; sets ``slots`` and ``chunk``."""

    async def run(self, slot: int, chunk: Chunk) -> list[Outcome]:
        """Run a chunk of mini-batches on the slot's worker (starting it, and its init(), if
        needed): one outcome per mini-batch, in order. Raises InitFailed when a worker cannot
        start, SlotRetired when the slot has no worker any more (none was tried)."""
        ...

    async def close(self, *, abort: bool) -> None:
        """Stop the workers: politely (so ``shutdown()`` runs) or, with ``abort``, at once."""
