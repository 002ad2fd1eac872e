"""Cancel a run when no daemon answers: signal its owner, or close it when the owner is dead.

A run's owner is the only writer of its records while it lives, so a live owner is asked to
cancel (SIGINT: a foreground ``pipesched run`` cancels its run and records it itself, exactly
as on Ctrl-C) and we only watch the store. A run whose owner is dead is closed here: its step
process groups are killed when they are provably still ours, its open steps and the run end
``canceled``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from scheduler.core.errors import PipeschedError
from scheduler.core.procinfo import is_alive, process_start_ticks, processes_of_run
from scheduler.store.records import FINISHED_RUN_STATUSES, Owner, RunRecord, StepAttempt

if TYPE_CHECKING:
    from scheduler.store import Store

CANCEL_REASON = "canceled by user"
OWNER_WAIT = 10.0  # the owner's executor gives steps SIGTERM, then SIGKILL 5 s later
KILL_GRACE = 5.0
POLL = 0.05

T = TypeVar("T")


class RunAlreadyFinished(PipeschedError):
    """The run has already finished."""


def cancel_without_daemon(store: Store, run_id: str, *, wait: float = OWNER_WAIT) -> str:
    """Cancel run ``run_id`` (a full id) without a daemon; return the line to print."""
    run = _open_run(store, run_id)
    owner = run.owner
    if owner is not None and owner_alive(owner):
        if owner.host != socket.gethostname():
            raise PipeschedError(
                f"run {run_id} belongs to process {owner.pid} on host {owner.host}",
                hint="cancel it on that host",
            )
        if _is_daemon(owner.pid):
            raise PipeschedError(
                f"run {run_id} belongs to the daemon (pid {owner.pid}), which does not answer "
                "on its socket",
                hint="try again in a moment; the daemon cancels its own runs",
            )
        return _ask_owner(store, run, owner, wait)
    close_orphaned_run(store, run_id, CANCEL_REASON)
    return f"canceled {run_id}"


def owner_alive(owner: Owner) -> bool:
    """Alive as far as this host can tell: another host's process is assumed alive."""
    if owner.host != socket.gethostname():
        return True
    return is_alive(owner.pid, owner.start_ticks)


def _open_run(store: Store, run_id: str) -> RunRecord:
    run = store.get_run(run_id)
    if run.status in FINISHED_RUN_STATUSES:
        reason = f" ({run.status_reason})" if run.status_reason else ""
        raise RunAlreadyFinished(f"run {run_id} has already finished: {run.status}{reason}")
    return run


def _ask_owner(store: Store, run: RunRecord, owner: Owner, wait: float) -> str:
    """SIGINT the owner (its handler cancels and records the run), then wait for the record."""
    with contextlib.suppress(ProcessLookupError):  # it died since we looked: closed below
        os.kill(owner.pid, signal.SIGINT)
    finished = _wait_for(lambda: _finished_or_orphaned(store, run.id, owner), wait)
    if finished is None:
        raise PipeschedError(
            f"asked process {owner.pid} to cancel run {run.id}, but the run is still open "
            f"after {wait:g}s",
            hint=f"it may still be stopping; see: pipesched show {run.id}",
        )
    if finished.status not in FINISHED_RUN_STATUSES:  # the owner died without closing it
        close_orphaned_run(store, run.id, CANCEL_REASON)
        return f"canceled {run.id}"
    if finished.status != "canceled":
        raise RunAlreadyFinished(f"run {run.id} finished {finished.status} before it was canceled")
    return f"canceled {run.id}"


def _finished_or_orphaned(store: Store, run_id: str, owner: Owner) -> RunRecord | None:
    current = store.get_run(run_id)
    if current.status in FINISHED_RUN_STATUSES:
        return current
    if not is_alive(owner.pid, owner.start_ticks):
        # Read again: the owner may have recorded the end just before it exited.
        return store.get_run(run_id)
    return None


def close_orphaned_run(store: Store, run_id: str, reason: str) -> None:
    """Close a run nobody runs any more: kill its steps' groups, end steps and run ``canceled``."""
    attempts = store.running_attempts(run_id)
    for attempt in attempts:
        _signal_group(attempt, signal.SIGTERM)
    # A step spawned just before its owner died may not have its pid recorded yet: its
    # environment still names the run.
    _signal_each(processes_of_run(run_id), signal.SIGTERM)
    _wait_for(
        lambda: not any(_leader_alive(a) for a in attempts) and not processes_of_run(run_id),
        KILL_GRACE,
    )
    for attempt in attempts:
        _signal_group(attempt, signal.SIGKILL)
    _signal_each(processes_of_run(run_id), signal.SIGKILL)
    detail = store.get_run_detail(run_id)
    for step, latest in detail.latest_attempts().items():
        if latest.status in ("running", "pending"):
            store.mark_step(run_id, step, status="canceled", reason=reason)
    store.finish_run(run_id, "canceled", reason)


def _leader_alive(attempt: StepAttempt) -> bool:
    return attempt.pid is not None and is_alive(attempt.pid, attempt.proc_start_ticks)


def _signal_group(attempt: StepAttempt, sig: signal.Signals) -> None:
    if _group_is_ours(attempt):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(attempt.pgid, sig)  # type: ignore[arg-type]  # the group: steps may fork


def _signal_each(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _group_is_ours(attempt: StepAttempt) -> bool:
    """True while the recorded process group is provably still the step's: its leader is the
    same process (pid and start time, zombie or not), or no process holds the group's number
    at all, so only the old group's members can still use it (Linux hands out no pid that is
    still some group's id)."""
    pgid = attempt.pgid
    if pgid is None or pgid <= 1:
        return False
    ticks = process_start_ticks(pgid)
    if ticks is None:
        return True
    return (
        pgid == attempt.pid
        and attempt.proc_start_ticks is not None
        and ticks == attempt.proc_start_ticks
    )


def _is_daemon(pid: int) -> bool:
    """Whether process ``pid`` is a ``pipesched daemon``: signalling it would stop the daemon
    and every run in it, not cancel one run."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            args = handle.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    for arg in args[1:]:
        if arg in ("daemon", "run"):  # the subcommand, whichever comes first
            return arg == "daemon"
    return False


def _wait_for(condition: Callable[[], T], timeout: float) -> T | None:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL)
