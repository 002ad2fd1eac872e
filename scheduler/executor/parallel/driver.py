"""The parallel_run step process: ``python -m scheduler.executor.parallel.driver <spec.json>``.

It lists the input, cuts it into mini-batches (of files; of rows for a tabular input, cut by size
without reading them; or one per partition with partition_keys), hands them to a pool of workers
(local processes or Dask workers), retries failed ones up to ``run_max_try`` tries, counts failed
items (files, or records of a tabular input) against ``error_threshold``, appends what ``run()``
returns to the output file in input order, prints progress to the step log and logs the totals as
metrics of the step run.

Exit status: 0 when the step succeeded (failures within the threshold), 1 otherwise.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from pathlib import Path

from scheduler.core.errors import PipeschedError
from scheduler.executor.parallel import tables
from scheduler.executor.parallel.local_pool import LocalPool
from scheduler.executor.parallel.pools import MiniBatch, Outcome, Pool, Say
from scheduler.executor.parallel.spec import ParallelSpec, list_input, mini_batches, resolve_input
from scheduler.runtime import Run

PREFIX = "[parallel_run]"
PROGRESS_EVERY = 2.0  # seconds between progress lines


class ThresholdExceeded(PipeschedError):
    """More items failed than error_threshold allows."""


class PlanError(PipeschedError):
    """The input cannot be cut into mini-batches as asked."""


class RowWriter:
    """Appends each mini-batch's rows in input order, whatever order batches finish in: a batch
    that finishes early waits in memory only until the ones before it are written."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._pending: dict[int, list[str]] = {}
        self._next = 0
        self.rows = 0

    def add(self, batch: int, rows: list[str]) -> None:
        self._pending[batch] = rows
        while self._next in self._pending:
            lines = self._pending.pop(self._next)
            if lines:
                self._file.write("\n".join(lines) + "\n")
                self.rows += len(lines)
            self._next += 1

    def close(self) -> None:
        self._file.close()


class Driver:
    """The step's bookkeeping, whatever runs the mini-batches: which are left, how many tries each
    had, what failed, the rows in order, progress and metrics. A pool takes chunks of mini-batches
    from it (``take``) and hands back their outcomes (``settle``)."""

    def __init__(self, spec: ParallelSpec, batches: list[MiniBatch], say: Say) -> None:
        self.spec, self.batches, self.say = spec, batches, say
        self.tries = [0] * len(batches)
        self.queue: deque[int] = deque(range(len(batches)))
        self.done = 0
        self.failed_batches = 0
        self.failed_items = 0
        self.writer: RowWriter | None = None
        self._started = time.monotonic()
        self._last_progress = 0.0

    @property
    def items(self) -> int:
        """Files, or the records of a tabular input that workers have read so far."""
        return sum(self._items(b) or 0 for b in self.batches)

    def _items(self, batch: MiniBatch) -> int | None:
        return batch.rows if batch.tabular else len(batch.items)

    def execute(self, pool: Pool) -> int:
        spec = self.spec
        if spec.append_row:
            self.writer = RowWriter(spec.output_file())
        try:
            if not self.batches:
                self.say("no input files: nothing to do")
                return 0
            pool.run_all(self)
            status = self._conclude()
        except PipeschedError as exc:
            self.say(f"error: {exc}")
            status = 1
        finally:
            if self.writer is not None:
                self.writer.close()
            self._log_metrics()
        return status

    # ---- what a pool calls --------------------------------------------------------------------

    def announce(self, workers: str) -> None:
        """The plan's line in the step log, once the pool knows its ``workers``."""
        spec = self.spec
        self.say(
            f"{self._plan()}; {workers} on {spec.target_type} '{spec.target_name}'; "
            f"worker logs in {spec.workers_dir}"
        )

    def waiting(self) -> int:
        """Mini-batches not handed to any worker yet."""
        return len(self.queue)

    def take(self, most: int) -> list[int]:
        """Up to ``most`` mini-batches to run next, in input order; each counts one try."""
        taken = [self.queue.popleft() for _ in range(min(most, len(self.queue)))]
        for batch in taken:
            self.tries[batch] += 1
        return taken

    def give_back(self, batches: list[int]) -> None:
        """Mini-batches that did not run: back to the front of the queue, no try counted."""
        for batch in reversed(batches):
            self.tries[batch] -= 1
            self.queue.appendleft(batch)

    def settle(self, batches: list[int], outcomes: list[Outcome]) -> None:
        """Record what happened to each mini-batch of a chunk. Raises ThresholdExceeded when
        more items failed than error_threshold allows."""
        self.give_back([b for b, o in zip(batches, outcomes, strict=True) if o.kind == "requeue"])
        for batch, outcome in zip(batches, outcomes, strict=True):
            if outcome.kind != "requeue":  # requeued: its worker went away before it ran
                self._record(batch, outcome)

    def progress(self, force: bool = False) -> None:
        """A progress line, at most every PROGRESS_EVERY seconds unless forced."""
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        elapsed = now - self._started
        self.say(
            f"{self.done}/{len(self.batches)} mini-batches done, {self.failed_batches} failed, "
            f"{self.failed_items} items failed ({elapsed:.1f}s)"
        )

    # ---- bookkeeping ----------------------------------------------------------------------------

    def _plan(self) -> str:
        spec, count = self.spec, len(self.batches)
        if spec.tabular is None:  # each file in one mini-batch
            files = sum(len(b.items) for b in self.batches)
        else:  # a big file comes in several pieces
            files = len({i["path"] for b in self.batches for i in b.items})
        if spec.partition_keys:
            return f"{files} files in {count} partitions by {', '.join(spec.partition_keys)}"
        if spec.tabular is not None:
            return f"{files} files in {count} mini-batches of about {spec.mini_batch_size} bytes"
        return f"{files} files in {count} mini-batches of up to {spec.mini_batch_size}"

    def _conclude(self) -> int:
        if self.queue:
            self.say(f"error: no workers left; {len(self.queue)} mini-batches not run")
            return 1
        if self.failed_items:
            self.say(
                f"completed with {self.failed_items} failed items "
                f"(error_threshold {self.spec.error_threshold})"
            )
        if self.writer is not None:
            self.say(f"{self.writer.rows} rows appended to {self.writer.path}")
        return 0

    def _record(self, batch: int, outcome: Outcome) -> None:
        spec, mini_batch = self.spec, self.batches[batch]
        if outcome.items is not None:
            mini_batch.rows = outcome.items
        if outcome.kind == "ok":
            self.done += 1
            if spec.append_row:
                size = self._items(mini_batch) or 0
                missing = max(0, size - outcome.count)
                if missing:
                    self.failed_items += missing
                    self.say(
                        f"mini-batch {self._name(batch)}: run() returned {outcome.count} "
                        f"results for {size} items; {missing} counted as failed"
                    )
                assert self.writer is not None
                self.writer.add(batch, outcome.rows)
        else:
            tries = self.tries[batch]
            self.say(
                f"mini-batch {self._name(batch)} failed on try {tries}/{spec.run_max_try} "
                f"({outcome.worker}): {outcome.error}"
            )
            if tries < spec.run_max_try:
                self.queue.append(batch)
            else:
                self.done += 1
                self.failed_batches += 1
                if mini_batch.tabular and mini_batch.rows is None:  # no worker got to read it
                    mini_batch.rows = tables.count_rows(mini_batch.items, spec.tabular or {})
                self.failed_items += self._items(mini_batch) or 0
                if self.writer is not None:
                    self.writer.add(batch, [])
        self.progress()
        if 0 <= spec.error_threshold < self.failed_items:
            raise ThresholdExceeded(
                f"{self.failed_items} items failed, more than error_threshold "
                f"{spec.error_threshold}: stopping"
            )

    def _name(self, batch: int) -> str:
        return f"{batch + 1}/{len(self.batches)} ({self.batches[batch].label()})"

    def _log_metrics(self) -> None:
        run = Run.get_context()
        elapsed = time.monotonic() - self._started
        items_done = self.items - self.failed_items
        run.log("mini_batches_total", len(self.batches))
        run.log("mini_batches_done", self.done)
        run.log("mini_batches_failed", self.failed_batches)
        run.log("items_total", self.items)
        run.log("items_failed", self.failed_items)
        run.log("items_per_second", round(items_done / elapsed, 1) if elapsed > 0 else 0.0)


def make_pool(spec: ParallelSpec, spec_path: Path, say: Say) -> Pool:
    """Dask workers for a dask target, else processes on this machine."""
    if spec.target_type == "dask":
        # lazy: only a Dask target needs the Dask side; a local step starts faster without it.
        from scheduler.executor.parallel.dask_pool import DaskPool

        return DaskPool(spec, say)
    return LocalPool(spec, spec_path, say)


def say(text: str) -> None:
    print(f"{PREFIX} {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m scheduler.executor.parallel.driver SPEC.json", file=sys.stderr)
        return 2
    spec_path = Path(args[0]).resolve()
    spec = ParallelSpec.read(spec_path)
    for problem in spec.problems:
        say(f"error: {problem}")
    if spec.problems:
        return 1
    try:
        pattern = resolve_input(spec.input, spec.datastores)
        batches = plan(spec, pattern, list_input(pattern))
    except PipeschedError as exc:
        say(f"error: {exc}")
        return 1
    return Driver(spec, batches, say).execute(make_pool(spec, spec_path, say))


def plan(spec: ParallelSpec, pattern: str, files: list[str]) -> list[MiniBatch]:
    """The input's mini-batches: one per partition with partition_keys, else groups of files, or
    of file pieces of about mini_batch_size bytes for a tabular input."""
    tabular = spec.tabular is not None
    base = tables.input_base(pattern)
    try:
        fmt = tables.PartitionFormat(spec.partition_format) if spec.partition_format else None
        if spec.partition_keys:
            if fmt is None:
                raise PlanError(
                    "partition_keys need the input's partition_format: the keys' values come "
                    "from the files' paths"
                )
            return [
                MiniBatch(
                    pieces if tabular else [p["path"] for p in pieces],
                    partition=values,
                    tabular=tabular,
                )
                for values, pieces in tables.plan_partitions(files, fmt, spec.partition_keys, base)
            ]
        if tabular:
            options = spec.tabular or {}
            return [
                MiniBatch(pieces, tabular=True)
                for pieces in tables.plan_pieces(files, options, spec.mini_batch_size, fmt, base)
            ]
    except (ValueError, tables.TableError) as exc:
        raise PlanError(str(exc)) from None
    return [MiniBatch(files) for files in mini_batches(files, spec.mini_batch_size)]


if __name__ == "__main__":
    sys.exit(main())
