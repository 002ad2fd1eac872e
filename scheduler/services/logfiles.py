"""Step logs on disk: which attempt's file a request means, and its tail. Shared by
``pipesched logs`` and the REST API (neither may import the other)."""

from __future__ import annotations

from pathlib import Path

from scheduler.core.errors import NotFound
from scheduler.store.records import RunDetail, StepAttempt

TAIL_BLOCK = 64 * 1024  # read backwards in blocks: the tail of a big log never reads all of it


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
    names = ", ".join(
        name if a.display_name in ("", name) else f"{name} ({a.display_name})"
        for name, a in latest.items()
    )
    raise NotFound(f"run {detail.run.id} has no step {wanted!r}", hint=f"steps: {names}")


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
