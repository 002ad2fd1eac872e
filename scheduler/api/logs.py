"""A step's log over HTTP: the last lines of an attempt's file, or the file followed while the
step runs (``GET /api/v1/runs/{id}/steps/{step}/logs?tail=N&follow=true``).

Logs are bytes (a step may print anything): they are sent as they are, never decoded. Following
polls the file and the store, as ``pipesched logs -f`` does (logs may sit on a network
filesystem, where inotify says nothing); the store is read before the file, so the last read
after the step has ended misses nothing.

The step and attempt choice and ``tail`` mirror ``scheduler.cli.cmd_logs``; they live here too
because the API must not import the CLI (the floor plan's arrows point one way).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.services.logfiles import pick_attempt, tail
from scheduler.store.records import FINISHED_RUN_STATUSES, FINISHED_STEP_STATUSES, StepAttempt

if TYPE_CHECKING:
    from scheduler.store import Store
    from scheduler.store.records import RunDetail

POLL_SECONDS = 0.2
READ_CHUNK = 256 * 1024


def read_log(attempt: StepAttempt, lines: int | None) -> tuple[bytes, int]:
    """What the attempt has logged so far (b"" before its file exists) and the offset."""
    path = Path(attempt.log_path) if attempt.log_path else None
    if path is None or not path.is_file():
        return b"", 0
    return tail(path, lines)


def _ended(detail: RunDetail, current: StepAttempt, attempt: int | None) -> bool:
    """True once nothing more will be written to the followed log. A failed latest attempt
    may be followed by a retry the store does not announce: follow on until the run ends."""
    if detail.run.status in FINISHED_RUN_STATUSES:
        return True
    retry_possible = attempt is None and current.status == "failed"
    return current.status in FINISHED_STEP_STATUSES and not retry_possible


async def follow_log(
    store: Store,
    run_id: str,
    step: str,
    attempt: int | None,
    current: StepAttempt,
    offset: int,
    first: bytes,
) -> AsyncIterator[bytes]:
    """Yield ``first``, then what the log gains until the step ends. Without ``attempt``, a
    retry that starts is followed in its turn. Store reads run in a thread: never the loop."""
    if first:
        yield first
    while True:
        detail = await asyncio.to_thread(store.get_run_detail, run_id)
        latest = pick_attempt(detail, step, attempt)
        if latest.attempt != current.attempt:
            async for data in _drain(current, offset):
                yield data
            current, offset = latest, 0
        current = latest
        ended = _ended(detail, current, attempt)
        async for data in _drain(current, offset):
            offset += len(data)
            yield data
        if ended:
            return
        await asyncio.sleep(POLL_SECONDS)


async def _drain(attempt: StepAttempt, offset: int) -> AsyncIterator[bytes]:
    """Bytes of the attempt's log from ``offset`` to its current end, in chunks."""
    if not attempt.log_path:
        return
    path = Path(attempt.log_path)
    while True:
        data = await asyncio.to_thread(_read_at, path, offset)
        if not data:
            return
        offset += len(data)
        yield data


def _read_at(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(READ_CHUNK)
    except FileNotFoundError:
        return b""
