"""Start-up recovery: close what a dead owner left open.

Only runs whose owner is dead are touched (a foreground ``pipesched run`` still going is left
alone). A ``running`` run ends ``failed: daemon restart``; its step process groups get SIGKILL
(without waiting for their reaping). A ``queued`` run whose steps never started is handed back
to be started again under the same id.

Step processes are found two ways: the process group recorded with each attempt, and — for a
crash between starting a step and recording its pid — every process whose environment carries
the run's ``PIPESCHED_RUN_ID``.

``recover`` blocks (store calls, a walk of /proc): the daemon runs it on the store's thread,
before anything else touches the store, so its writes come first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from dataclasses import dataclass, field

import structlog

from scheduler.core.procinfo import is_alive
from scheduler.store.protocols import RecoveryStore
from scheduler.store.records import RunRecord

log = structlog.get_logger("scheduler.daemon.recovery")

REASON = "daemon restart"


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
        detail = store.get_run_detail(run.id)
        started_any = any(a.started_at is not None for a in detail.attempts)
        if run.status == "queued" and not started_any:
            report.requeue.append(run)
            continue
        report.killed_groups += _kill_step_processes(store, run.id)
        for step, attempt in detail.latest_attempts().items():
            if attempt.status == "running":
                store.end_attempt(run.id, step, attempt.attempt, status="failed", reason=REASON)
            elif attempt.status == "pending":
                store.mark_step(run.id, step, status="skipped", reason=REASON)
        store.finish_run(run.id, "failed", REASON)
        report.closed.append(run.id)
        log.warning("run_closed", run_id=run.id, status="failed", reason=REASON)
    return report


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


def processes_of_run(run_id: str) -> list[int]:
    """PIDs of live processes whose environment names this run (steps and their children)."""
    needle = f"PIPESCHED_RUN_ID={run_id}\0".encode()
    found = []
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                if needle in handle.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
