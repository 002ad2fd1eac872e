"""Waiting on a run the way Azure's ``wait_for_completion`` does: poll its status until it is
final, and with ``show_output`` print each step's log as the step runs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import NotFound
from scheduler.store.records import AZURE_STATUS_CODES

if TYPE_CHECKING:
    from scheduler.sdk.backend import Backend
    from scheduler.sdk.runs import PipelineRun

STATUS_CODES = AZURE_STATUS_CODES
STEP_STATUS_CODES = {**STATUS_CODES, "pending": "NotStarted", "skipped": "Canceled"}
STEP_STATUS_CODES["reused"] = "Finished"
FINAL = frozenset({"Finished", "Failed", "Canceled"})
FINISHED_STEP = frozenset({"completed", "failed", "canceled", "skipped", "reused"})
# Waiting on an embedded run polls the store: another process's SQLite writes raise no event
# here. Start quick (short runs end in well under a second), then back off to spare the
# database on long ones.
POLL_FIRST, POLL_MAX, POLL_GROWTH = 0.05, 2.0, 1.5


def poll(read: Callable[[], str], deadline: float, wait: Callable[[float], None]) -> str:
    """``read()`` until it gives a final status or the deadline passes; the last value.
    ``wait(seconds)`` sleeps between reads and may return early (the backend's
    ``wait_for_change``)."""
    interval = POLL_FIRST
    while True:
        status = read()
        if status in FINAL or time.monotonic() >= deadline:
            return status
        wait(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(POLL_MAX, interval * POLL_GROWTH)


class Watcher:
    """Prints a run's progress the way Azure's ``wait_for_completion(show_output=True)`` does:
    status changes, then each step's log (followed while it runs) and its final status."""

    def __init__(self, run: PipelineRun, deadline: float) -> None:
        self.run, self.deadline = run, deadline
        self.shown: set[str] = set()

    def watch(self) -> str:
        backend, printed, interval = self.run._backend, None, POLL_FIRST
        while True:
            detail = self.run._detail()
            status = STATUS_CODES[detail["status"]]
            ready = [
                s
                for s in detail["steps"]
                if s["name"] not in self.shown and (s["started_at"] or s["status"] in FINISHED_STEP)
            ]
            if status != printed and (status not in FINAL or not ready):
                print(f"PipelineRun Status: {status}")  # the final one after the last step
                printed = status
            if ready:
                step = min(ready, key=lambda s: s["started_at"] or "~")
                self.shown.add(step["name"])
                show_step(backend, self.run.id, step)
                interval = POLL_FIRST
                continue
            if status in FINAL or time.monotonic() >= self.deadline:
                return status
            backend.wait_for_change(self.run.id, interval)
            interval = min(POLL_MAX, interval * POLL_GROWTH)


def show_step(backend: Backend, run_id: str, step: dict[str, Any]) -> None:
    label = step["display_name"] or step["name"]
    print(f"\nStepRunId: {run_id}/{step['name']}")
    if step["status"] in ("reused", "skipped") or not step["started_at"]:
        print(f"StepRun( {label} ) Status: {STEP_STATUS_CODES[step['status']]} ({step['status']})")
        return
    print(f"StepRun( {label} ) Status: Running\n")
    print(f"Streaming log of step {step['name']}\n" + "=" * (23 + len(step["name"])))
    try:
        for chunk in backend.step_log(run_id, step["name"], follow=True):
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
    except NotFound:
        pass  # canceled before it logged anything
    final = next(s for s in backend.get_run(run_id)["steps"] if s["name"] == step["name"])
    print(f"\nStepRun({label}) Execution Summary\n" + "=" * (28 + len(label)))
    print(f"StepRun( {label} ) Status: {STEP_STATUS_CODES[final['status']]}")
