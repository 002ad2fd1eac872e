"""Closing what a dead owner left open: at start-up (``recover``), and while the daemon runs
(``close_runs_of_exited_owners``, for foreground runs).

Only runs whose owner is dead are touched (a foreground ``pipesched run`` still going is left
alone). At start-up a ``running`` run ends ``failed: daemon restart`` — ``failed: owner exited``
when its owner was a foreground process (trigger ``manual``: ``pipesched run`` or the SDK's
child; the daemon records ``schedule:…``, ``file:…``/``files:…`` and ``api`` runs) — and its step
process groups get SIGKILL (without waiting for their reaping). A ``queued`` run whose steps
never started is handed back to be started again under the same id.

While the daemon runs, a foreground owner may die without closing its run (``kill -9``): the
daemon looks every few seconds and closes such a run ``failed: owner exited`` the same way,
queued or running (it was never the daemon's to start).

Step processes are found two ways: the process group recorded with each attempt, and — for a
crash between starting a step and recording its pid — every process whose environment carries
the run's ``PIPESCHED_RUN_ID``.

Both block (store calls, a walk of /proc): the daemon runs them on the store's thread —
``recover`` before anything else touches the store, so its writes come first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from dataclasses import dataclass, field

import structlog

from scheduler.core.loopguard import run_blocking
from scheduler.core.procinfo import is_alive, processes_of_run
from scheduler.store.protocols import RecoveryStore
from scheduler.store.records import FINISHED_RUN_STATUSES, RunDetail, RunRecord

log = structlog.get_logger("scheduler.daemon.recovery")

REASON = "daemon restart"
OWNER_EXITED = "owner exited"
FOREGROUND_TRIGGER = "manual"  # the trigger of every run a foreground process records and owns


@dataclass
class RecoveryReport:
    closed: list[str] = field(default_factory=list)  # running runs ended failed
    requeue: list[RunRecord] = field(default_factory=list)  # queued runs to start again
    killed_groups: int = 0
    left_alone: list[str] = field(default_factory=list)  # owner alive or on another host


def owner_is_dead(run: RunRecord, host: str) -> bool | None:
    """True/False on this host; None when the owner lives on another host (cannot tell)."""
    owner = run.owner
    if owner is None:
        return True
    if owner.host != host:
        return None
    return not is_alive(owner.pid, owner.start_ticks or None)


def closing_reason(run: RunRecord) -> str:
    """Why a run of a dead owner ends failed: its foreground owner exited, or the daemon that
    owned it did (and this one restarted)."""
    return OWNER_EXITED if run.trigger == FOREGROUND_TRIGGER else REASON


def recover(store: RecoveryStore) -> RecoveryReport:
    report = RecoveryReport()
    host = socket.gethostname()
    for run in store.open_runs():
        dead = owner_is_dead(run, host)
        if not dead:
            report.left_alone.append(run.id)
            if dead is None and run.owner is not None:
                log.warning("run_owner_elsewhere", run_id=run.id, owner_host=run.owner.host)
            continue
        # Read again: an owner may have closed its run between the list and its death.
        detail = store.get_run_detail(run.id)
        if detail.run.status in FINISHED_RUN_STATUSES:
            continue
        started_any = any(a.started_at is not None for a in detail.attempts)
        if run.status == "queued" and not started_any:
            report.requeue.append(run)
            continue
        report.killed_groups += _close(store, detail, closing_reason(run))
        report.closed.append(run.id)
    return report


def close_runs_of_exited_owners(store: RecoveryStore) -> list[str]:
    """Close the open foreground runs of this host whose owner died without closing them
    (killed with ``kill -9``): their step processes are killed, the run and what it left open
    end ``failed: owner exited``. Returns the ids closed. Runs of live owners, of other hosts
    and the daemon's own are left alone."""
    host = socket.gethostname()
    closed = []
    for run in store.open_runs():
        if run.trigger != FOREGROUND_TRIGGER or run.owner is None:
            continue  # the daemon's own runs (closed at its next start), or not yet owned
        if owner_is_dead(run, host) is not True:
            continue  # alive, or on another host
        detail = store.get_run_detail(run.id)  # dead now: what it recorded last is final
        if detail.run.status in FINISHED_RUN_STATUSES:
            continue
        _close(store, detail, OWNER_EXITED)
        closed.append(run.id)
    return closed


LEADER_LOST = "leader lost"


def close_runs_of_lost_leader(store: RecoveryStore, host: str, pid: int) -> int:
    """Close the open runs a replaced leader (``host``, ``pid``) owned, once its lease has
    lapsed: ``failed: leader lost``. A run whose owner still lives on this host (a leader
    stopped, or cut off from the database) is left until it exits: its steps run on, and what
    they end with cannot be written under the old epoch. Returns how many are left open."""
    here = socket.gethostname()
    waiting = 0
    for run in store.open_runs():
        owner = run.owner
        if owner is None or (owner.host, owner.pid) != (host, pid):
            continue
        if owner.host == here and owner_is_dead(run, here) is False:
            waiting += 1
            continue
        detail = store.get_run_detail(run.id)
        if detail.run.status in FINISHED_RUN_STATUSES:
            continue
        if owner.host == here:
            _close(store, detail, LEADER_LOST)
        else:  # its step processes are on the other host: nothing to kill from here
            _close_records(store, detail, LEADER_LOST)
    return waiting


def _close(store: RecoveryStore, detail: RunDetail, reason: str) -> int:
    """End a run nobody runs any more ``failed``: SIGKILL its step processes, end the running
    attempts ``failed`` and skip the pending steps; returns the number of groups killed."""
    killed = _kill_step_processes(store, detail.run.id)
    _close_records(store, detail, reason)
    return killed


def _close_records(store: RecoveryStore, detail: RunDetail, reason: str) -> None:
    """End the running attempts ``failed``, skip the pending steps, end the run ``failed``."""
    run_id = detail.run.id
    for step, attempt in detail.latest_attempts().items():
        if attempt.status == "running":
            store.end_attempt(run_id, step, attempt.attempt, status="failed", reason=reason)
        elif attempt.status == "pending":
            store.mark_step(run_id, step, status="skipped", reason=reason)
    store.finish_run(run_id, "failed", reason)
    log.warning("run_closed", run_id=run_id, status="failed", reason=reason)


def _kill_step_processes(store: RecoveryStore, run_id: str) -> int:
    groups: set[int] = set()
    for attempt in store.running_attempts(run_id):
        if attempt.pgid and attempt.pid and is_alive(attempt.pid, attempt.proc_start_ticks):
            groups.add(attempt.pgid)
    for pid in processes_of_run(run_id):
        with contextlib.suppress(OSError):
            groups.add(os.getpgid(pid))
    for pgid in groups:
        # killpg, not kill: a step's children share its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return len(groups)


OWNER_CHECK_SECONDS = 2.0  # a foreground run whose owner was killed is closed within ~2 s


async def watch_owners(store: RecoveryStore) -> None:
    """Close the foreground runs (``pipesched run``, the SDK's child) whose owner died
    without closing them: no signal tells us, so look every few seconds (on the daemon's loop;
    the look itself runs on the store's thread)."""
    while True:
        await asyncio.sleep(OWNER_CHECK_SECONDS)
        try:
            await run_blocking(close_runs_of_exited_owners, store)
        except Exception as exc:  # the store may be away for a while: look again later
            log.warning("owner_check_failed", error=str(exc))
