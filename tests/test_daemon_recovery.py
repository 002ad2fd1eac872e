"""Start-up recovery without a daemon: what a dead owner left open is closed or handed back,
and what a live owner holds is left alone. The runs live in ``tests.store_fake.InMemoryStore``;
step processes are real processes in their own groups."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from scheduler.core.procinfo import Owner, current_owner, is_alive, process_start_ticks
from scheduler.daemon.recovery import REASON, recover
from scheduler.store.records import RunRecord
from tests.conftest import wait_until
from tests.store_fake import InMemoryStore

STEPS = [("prep", "Prep", "python_script"), ("train", "Train", "python_script")]
HOST = socket.gethostname()


@dataclass
class Step:
    """A step process still running after its daemon died."""

    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def gone(self) -> bool:
        return self.process.poll() is not None


@pytest.fixture
def spawn() -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str] | None = None) -> Step:
        process = subprocess.Popen(
            [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(120)"],
            start_new_session=True,  # its own process group, as the executor starts steps
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
        )
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"  # running its own code, not starting
        return Step(process)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def dead_owner() -> Owner:
    """A process that has exited (its pid may be reused: the start time tells them apart)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    ticks = process_start_ticks(process.pid) or 0
    process.wait()
    return Owner(HOST, process.pid, ticks)


def queued(store: InMemoryStore, owner: Owner | None) -> RunRecord:
    return store.create_run(
        pipeline="p",
        content_hash="h",
        experiment="p",
        parameters={},
        trigger="schedule:nightly",  # a daemon's run (a foreground one ends "owner exited")
        steps=STEPS,
        owner=owner,
    )


def running(store: InMemoryStore, owner: Owner) -> RunRecord:
    run = queued(store, owner)
    store.start_run(run.id, owner)
    store.begin_attempt(run.id, "prep", 1)
    return run


def state(store: InMemoryStore, run_id: str) -> tuple[str, str | None, dict[str, tuple]]:
    detail = store.get_run_detail(run_id)
    steps = {s: (a.status, a.status_reason) for s, a in detail.latest_attempts().items()}
    return str(detail.run.status), detail.run.status_reason, steps


def test_a_running_run_of_a_dead_owner_ends_failed_daemon_restart(spawn) -> None:
    store = InMemoryStore()
    run = running(store, dead_owner())
    step = spawn()
    ticks = process_start_ticks(step.pid)
    store.set_attempt_process(
        run.id, "prep", 1, pid=step.pid, pgid=step.pid, proc_start_ticks=ticks
    )

    report = recover(store)

    assert report.closed == [run.id]
    assert state(store, run.id) == (
        "failed",
        REASON,
        {"prep": ("failed", REASON), "train": ("skipped", REASON)},
    )
    assert report.killed_groups == 1
    wait_until(step.gone, timeout=10, message="the orphaned step's process group was killed")
    assert store.open_runs() == []


def test_a_step_whose_pid_was_never_recorded_is_found_by_its_run_id(spawn) -> None:
    store = InMemoryStore()
    run = running(store, dead_owner())  # crashed between starting the step and recording it
    step = spawn({"PIPESCHED_RUN_ID": run.id})
    recover(store)
    wait_until(step.gone, timeout=10, message="the step found through its environment was killed")
    assert state(store, run.id)[:2] == ("failed", REASON)


def test_a_queued_run_of_a_dead_owner_is_handed_back_unchanged(spawn) -> None:
    store = InMemoryStore()
    run = queued(store, dead_owner())
    report = recover(store)
    assert [r.id for r in report.requeue] == [run.id]
    assert report.closed == []
    assert state(store, run.id) == (
        "queued",
        None,
        {"prep": ("pending", None), "train": ("pending", None)},
    )


def test_a_queued_run_with_no_owner_counts_as_orphaned() -> None:
    store = InMemoryStore()
    run = queued(store, None)
    assert [r.id for r in recover(store).requeue] == [run.id]


def test_a_run_of_a_live_owner_is_left_alone(spawn) -> None:
    store = InMemoryStore()
    step = spawn()
    owner = current_owner()  # this test process: a foreground `pipesched run` still going
    run = running(store, owner)
    ticks = process_start_ticks(step.pid)
    store.set_attempt_process(
        run.id, "prep", 1, pid=step.pid, pgid=step.pid, proc_start_ticks=ticks
    )
    waiting = queued(store, owner)

    report = recover(store)

    assert sorted(report.left_alone) == sorted([run.id, waiting.id])
    assert (report.closed, report.requeue, report.killed_groups) == ([], [], 0)
    assert state(store, run.id)[:2] == ("running", None)
    assert state(store, waiting.id)[:2] == ("queued", None)
    assert is_alive(step.pid, ticks)


def test_a_reused_pid_is_not_the_owner() -> None:
    store = InMemoryStore()
    me = current_owner()
    run = running(store, Owner(HOST, me.pid, me.start_ticks + 1))  # same pid, other start
    assert recover(store).closed == [run.id]


def test_a_run_owned_on_another_host_is_left_alone() -> None:
    store = InMemoryStore()
    run = running(store, Owner("elsewhere.example", 1, 1))
    report = recover(store)
    assert report.left_alone == [run.id]
    assert state(store, run.id)[:2] == ("running", None)


def test_recovery_of_many_runs_takes_each_once() -> None:
    store = InMemoryStore()
    dead = dead_owner()
    runs = [running(store, dead) for _ in range(3)]
    report = recover(store)
    assert sorted(report.closed) == sorted(r.id for r in runs)
    assert recover(store).closed == []  # nothing open is left to close
