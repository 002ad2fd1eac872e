"""A nightly pipeline executed in-process on a clock the test sets: days of runs in seconds,
through the same services the daemon uses (``submit_run``, ``RunExecutor``), for the
retention tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from scheduler.core.clock import Clock
from scheduler.dispatch.submit import submit_run
from scheduler.executor.run import ExecutionOptions, RunExecutor
from scheduler.store import Store
from scheduler.store.records import RunDetail
from tests.projects import Project

# ``prepare`` never changes, so every run after the first reuses the first run's output;
# ``train`` runs each night and writes a fresh output of its own.
NIGHTLY = """
parameters:
  day: {type: int, default: 0}
data:
  base: {}
  daily: {}
steps:
  prepare:
    type: command
    command: ["sh", "-c", "head -c 20000 /dev/zero > $0/base.bin", "${{data.base}}"]
    outputs: [base]
  train:
    type: command
    command: ["sh", "-c", "echo night $0; head -c 50000 /dev/zero > $1/model.bin",
              "${{parameters.day}}", "${{data.daily}}"]
    inputs: [base]
    outputs: [daily]
    allow_reuse: false
"""

FIRST_NIGHT = datetime(2026, 1, 1, 2, 0, tzinfo=UTC)


class ManualClock(Clock):
    """Wall time that moves only when the test says so."""

    def __init__(self, at: datetime = FIRST_NIGHT) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def night(day: int) -> datetime:
    return FIRST_NIGHT + timedelta(days=day)


def run_night(
    project: Project, store: Store, clock: ManualClock, day: int, pipeline: str = "nightly"
) -> RunDetail:
    """Execute the pipeline as the run of night ``day`` (the clock set to it)."""
    clock.at = night(day)
    config = project.config()
    definition = project.load(pipeline)
    run = submit_run(config, store, definition, {"day": day})
    executor = RunExecutor(
        config=config,
        store=store,
        pipeline=definition,
        run=run,
        options=ExecutionOptions(kill_grace=0.5),
    )
    asyncio.run(executor.execute())
    return store.get_run_detail(run.id)


def steps_of(detail: RunDetail) -> dict[str, dict]:
    return {step["name"]: step for step in detail.to_json()["steps"]}
