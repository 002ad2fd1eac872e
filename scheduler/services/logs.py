"""Step logs, read once for every front end: which attempt's file a request means, its tail,
and the log followed while the step (or the whole run) goes on.

Logs are bytes (a step may print anything): they are handed on as they are, never decoded.
Following polls the file and the store (logs may sit on a network filesystem, where inotify
says nothing, and a fifth of a second is quick enough for a human watching). The store is read
before the files: the executor records an ending only after the step's process has exited, so
the last read after seeing the end misses nothing. A failed latest attempt may be followed by a
retry the store does not announce, so without a chosen attempt the log is followed until the
run ends; a retry that starts is followed in its turn.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.core.errors import NotFound
from scheduler.services.runs import resolve_run
from scheduler.store.records import (
    FINISHED_RUN_STATUSES,
    FINISHED_STEP_STATUSES,
    RunDetail,
    StepAttempt,
)

if TYPE_CHECKING:
    from scheduler.store.reads import HistoryReads

POLL_SECONDS = 0.2
TAIL_BLOCK = 64 * 1024  # read backwards in blocks: the tail of a big log never reads all of it
SUCCESS = frozenset({"completed", "reused"})


def find_step(detail: RunDetail, wanted: str) -> str:
    """A step by its id or its display name (exact first, then ignoring case)."""
    latest = detail.latest_attempts()
    for matches in (
        lambda a: a.step == wanted or a.display_name == wanted,
        lambda a: wanted.casefold() in (a.step.casefold(), a.display_name.casefold()),
    ):
        found = [name for name, a in latest.items() if matches(a)]
        if len(found) == 1:
            return found[0]
    names = [*latest, *(a.display_name for a in latest.values() if a.display_name)]
    close = difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
    listed = "steps: " + ", ".join(
        name if a.display_name in ("", name) else f"{name} ({a.display_name})"
        for name, a in latest.items()
    )
    hint = f"did you mean '{close[0]}'? {listed}" if close else listed
    raise NotFound(f"run {detail.run.id} has no step {wanted!r}", hint=hint)


def pick_attempt(detail: RunDetail, step: str, attempt: int | None) -> StepAttempt:
    """The asked attempt, else the latest one that started (a retry not yet started has no log)."""
    tries = [a for a in detail.attempts if a.step == step]
    if attempt is not None:
        for candidate in tries:
            if candidate.attempt == attempt:
                return candidate
        numbers = ", ".join(str(a.attempt) for a in tries) or "none"
        raise NotFound(f"step {step!r} has no attempt {attempt}", hint=f"attempts: {numbers}")
    started = [a for a in tries if a.started_at is not None or a.log_path]
    return max(started or tries, key=lambda a: a.attempt)


def tail(path: Path, lines: int | None) -> tuple[bytes, int]:
    """The file's content (only its last ``lines`` lines when given) and the offset read up to.

    Reads backwards in blocks, so ``-n 10`` of a large log does not read all of it."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        if lines is None:
            handle.seek(0)
            return handle.read(size), size
        if lines == 0:
            return b"", size
        position, chunk = size, b""
        while position > 0 and chunk.count(b"\n") <= lines:
            step = min(TAIL_BLOCK, position)
            position -= step
            handle.seek(position)
            chunk = handle.read(step) + chunk
        body = chunk[:-1] if chunk.endswith(b"\n") else chunk
        kept = body.split(b"\n")[-lines:]
        return b"\n".join(kept) + (b"\n" if chunk.endswith(b"\n") else b""), size


@dataclass
class LogSource:
    """One attempt's log file and how far it has been read."""

    step: str
    attempt: int
    path: Path | None
    offset: int = 0
    held: bytes = b""  # an unfinished line, held back while several logs interleave

    @property
    def key(self) -> tuple[str, int]:
        return (self.step, self.attempt)

    def exists(self) -> bool:
        return self.path is not None and self.path.is_file()

    @classmethod
    def of(cls, attempt: StepAttempt) -> LogSource:
        return cls(
            attempt.step, attempt.attempt, Path(attempt.log_path) if attempt.log_path else None
        )


Chunk = tuple[LogSource, bytes]


class StepLogs:
    """The logs a request names: one step's attempt (the latest by default), or, with no step,
    the latest log of every step in start order. ``initial`` reads what is there; ``poll`` reads
    what was added since and says whether the followed step (or run) has ended."""

    def __init__(self, detail: RunDetail, step: str | None, attempt: int | None) -> None:
        self.run_id = detail.run.id
        self.detail = detail
        self.step = find_step(detail, step) if step else None
        self.attempt = attempt
        self.sources = [LogSource.of(a) for a in self._initial_attempts()]
        self._known = {s.key: s for s in self.sources}

    def _initial_attempts(self) -> list[StepAttempt]:
        if self.step is not None:
            return [pick_attempt(self.detail, self.step, self.attempt)]
        chosen = [pick_attempt(self.detail, name, None) for name in self.detail.latest_attempts()]
        return sorted(
            (a for a in chosen if a.started_at is not None or a.log_path),
            key=lambda a: (a.started_at is None, a.started_at),
        )

    @property
    def current(self) -> StepAttempt:
        """The chosen attempt of the named step (with a step only)."""
        assert self.step is not None
        return pick_attempt(self.detail, self.step, self.attempt)

    def has_log(self) -> bool:
        return any(s.exists() for s in self.sources)

    def require_log(self) -> None:
        """NotFound unless the chosen attempt of the named step has a log."""
        if not self.current.log_path:
            raise NotFound(f"step {self.step!r} of run {self.run_id} has no log yet")

    def initial(self, lines: int | None = None, *, cutoff: float | None = None) -> list[Chunk]:
        """Each existing log (only its last ``lines`` lines when given; none untouched since
        ``cutoff``, a Unix time, whose reading starts at its end); following goes on from here."""
        chunks: list[Chunk] = []
        for source in self.sources:
            if not source.exists():
                continue
            assert source.path is not None
            status = source.path.stat()
            if cutoff is not None and status.st_mtime < cutoff:
                source.offset = status.st_size
                continue
            data, source.offset = tail(source.path, lines)
            chunks.append((source, data))
        return chunks

    def poll(
        self, store: HistoryReads, *, whole_lines: bool = False
    ) -> tuple[list[Chunk], bool | None]:
        """What the followed logs gained, and the outcome: None while the step (or, without a
        step, the run) goes on, else whether it succeeded. With ``whole_lines``, an unfinished
        last line is held back until it ends or the outcome is known."""
        detail = store.get_run_detail(self.run_id)
        self.detail = detail
        for current in self._followed():
            source = self._known.setdefault((current.step, current.attempt), LogSource.of(current))
            source.path = source.path or LogSource.of(current).path
        outcome = self._outcome()
        chunks = []
        for source in self._known.values():
            data = _read_new(source, whole_lines=whole_lines and outcome is None)
            if data:
                chunks.append((source, data))
        return chunks, outcome

    def _followed(self) -> list[StepAttempt]:
        if self.step is not None:
            return [pick_attempt(self.detail, self.step, self.attempt)]
        latest = (pick_attempt(self.detail, name, None) for name in self.detail.latest_attempts())
        return [a for a in latest if a.log_path]

    def _outcome(self) -> bool | None:
        run = self.detail.run
        run_over = run.status in FINISHED_RUN_STATUSES
        if self.step is None:
            return (run.status == "completed") if run_over else None
        current = pick_attempt(self.detail, self.step, self.attempt)
        retry_possible = self.attempt is None and current.status == "failed"
        if run_over or (current.status in FINISHED_STEP_STATUSES and not retry_possible):
            return current.status in SUCCESS
        return None

    def follow(
        self, store: HistoryReads, *, sleep: Callable[[float], None] = time.sleep
    ) -> Iterator[Chunk | bool]:
        """Chunks as the logs gain them, then the outcome (whether it succeeded) once the
        followed step or run has ended."""
        while True:
            chunks, outcome = self.poll(store, whole_lines=self.step is None)
            yield from chunks
            if outcome is not None:
                yield outcome
                return
            sleep(POLL_SECONDS)

    async def follow_async(self, store: HistoryReads) -> AsyncIterator[bytes]:
        """The bytes the followed logs gain until the step ends; reads run in a worker thread,
        never on the event loop."""
        import asyncio  # only the daemon follows asynchronously; a command never loads it

        while True:
            chunks, outcome = await asyncio.to_thread(self.poll, store)
            for _, data in chunks:
                yield data
            if outcome is not None:
                return
            await asyncio.sleep(POLL_SECONDS)


def open_logs(
    store: HistoryReads,
    run_ref: str,
    step: str | None,
    attempt: int | None,
    *,
    pipeline: str | None = None,
) -> StepLogs:
    """The logs of run ``run_ref`` (a unique id prefix, or ``latest``: of ``pipeline`` when
    given), of ``step`` (id or display name) at ``attempt`` (default: the latest), or of every
    step."""
    detail = store.get_run_detail(resolve_run(store, run_ref, pipeline=pipeline))
    return StepLogs(detail, step, attempt)


def read_step_log(
    store: HistoryReads,
    run_ref: str,
    step: str,
    *,
    follow: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """A step's latest attempt's log as chunks; with ``follow``, until the step ends."""
    logs = open_logs(store, run_ref, step, None)
    for _, data in logs.initial():
        if data:
            yield data
    if follow:
        for item in logs.follow(store, sleep=sleep):
            if isinstance(item, tuple):
                yield item[1]


def _read_new(source: LogSource, *, whole_lines: bool) -> bytes:
    if not source.exists():
        return b""
    assert source.path is not None
    try:
        with source.path.open("rb") as handle:
            handle.seek(source.offset)
            data = handle.read()
    except FileNotFoundError:
        return b""
    source.offset += len(data)
    data, source.held = source.held + data, b""
    if whole_lines and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        data, source.held = data[:cut], data[cut:]
    return data


@dataclass(frozen=True)
class LogWindow:
    """A piece of one attempt's log: its bytes from ``start`` to ``end`` (the offset to read
    on from), and whether the start of the file was left out."""

    attempt: int
    start: int
    end: int
    data: bytes

    @property
    def cut(self) -> bool:
        return self.start > 0


def read_log_window(attempt: StepAttempt, offset: int | None, max_bytes: int) -> LogWindow:
    """What an attempt's log holds from ``offset`` on (at most ``max_bytes``), or, without an
    offset, its last ``max_bytes``: a page shows the tail of a large log and then follows it."""
    path = Path(attempt.log_path) if attempt.log_path else None
    if path is None or not path.is_file():
        return LogWindow(attempt.attempt, 0, 0, b"")
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        start = max(0, size - max_bytes) if offset is None else min(max(0, offset), size)
        handle.seek(start)
        data = handle.read(min(max_bytes, size - start))
    return LogWindow(attempt.attempt, start, start + len(data), data)
