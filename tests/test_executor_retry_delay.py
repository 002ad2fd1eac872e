"""Waits between a failed step's attempts: ``retry_delay`` × ``retry_backoff``^(n-1), at most
``retry_max_delay``; a cancel or a shutdown during a wait ends it at once."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors
from scheduler.dispatch.submit import submit_run
from scheduler.executor import ExecutionOptions, RunExecutor
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project, make_project

ALWAYS_FAILS = {"fail.py": "import sys\nprint('no luck')\nsys.exit(3)\n"}


def failing_pipeline(project: Project, name: str, retry: str) -> None:
    project.pipeline(
        name,
        f"""
        steps:
          flaky:
            type: python_script
            script: fail.py
            {retry}
        """,
        ALWAYS_FAILS,
    )


def attempt_times(project: Project, run_id: str) -> list[tuple[datetime, datetime]]:
    with project.store() as store:
        detail = store.get_run_detail(run_id)
    return [(a.started_at, a.finished_at) for a in detail.attempts]


def test_each_retry_waits_its_delay_times_the_backoff(tmp_path: Path):
    project = make_project(tmp_path)
    failing_pipeline(
        project, "flaky", "retries: 2\n            retry_delay: 1s\n            retry_backoff: 1.5"
    )
    result = project.cli("run", "flaky")
    assert result.returncode == 1, result.stderr
    assert "next attempt in 1.0s" in result.stderr
    assert "next attempt in 1.5s" in result.stderr
    with project.store() as store:
        (run,) = store.list_runs(limit=0)
    times = attempt_times(project, run.id)
    assert len(times) == 3
    gaps = [(times[n + 1][0] - times[n][1]).total_seconds() for n in range(2)]
    assert gaps[0] >= 1.0
    assert gaps[1] >= 1.5


def test_the_wait_grows_until_retry_max_delay_caps_it(tmp_path: Path):
    project = make_project(tmp_path)
    failing_pipeline(
        project,
        "p",
        "retries: 9\n            retry_delay: 2s\n            retry_backoff: 3\n"
        "            retry_max_delay: 1min",
    )
    step = project.load("p").steps["flaky"]
    assert [step.retry_wait(n) for n in range(1, 6)] == [2, 6, 18, 54, 60]
    assert step.retry_wait(5000) == 60  # no overflow for a huge backoff power


def test_without_a_delay_retries_start_at_once_by_default(tmp_path: Path):
    project = make_project(tmp_path)
    failing_pipeline(project, "p", "retries: 1")
    step = project.load("p").steps["flaky"]
    assert (step.retry_delay, step.retry_backoff, step.retry_max_delay) == (0, 1.0, 600)
    assert step.retry_wait(1) == 0


@pytest.mark.parametrize(
    ("retry", "error"),
    [
        (
            "retry_delay: soon",
            "p/pipeline.yaml:6:18: error: 'retry_delay' in step 'flaky': not a duration",
        ),
        (
            "retry_backoff: 0.5",
            "p/pipeline.yaml:6:20: error: 'retry_backoff' in step 'flaky' must be "
            "greater than or equal to 1",
        ),
        (
            "retry_max_delay: -1",
            "p/pipeline.yaml:6:22: error: 'retry_max_delay' in step 'flaky'",
        ),
    ],
)
def test_a_bad_retry_field_is_reported_at_its_node(tmp_path: Path, retry: str, error: str):
    project = make_project(tmp_path)
    failing_pipeline(project, "p", retry)
    with pytest.raises(DefinitionErrors) as info:
        project.load("p")
    (message,) = (str(e) for e in info.value.errors)
    assert error in message


def test_cancel_during_the_wait_ends_the_run_without_a_second_attempt(tmp_path: Path):
    project = make_project(tmp_path)
    failing_pipeline(project, "p", "retries: 3\n            retry_delay: 10min")
    config, store = project.config(), project.store()
    pipeline = project.load("p")
    run = submit_run(config, store, pipeline, {})
    executor = RunExecutor(
        config=config,
        store=store,
        pipeline=pipeline,
        run=run,
        options=ExecutionOptions(kill_grace=0.5),
    )

    async def cancel_once_the_first_attempt_failed() -> str:
        execution = asyncio.ensure_future(executor.execute())
        while not any(a.status == "failed" for a in store.get_run_detail(run.id).attempts):
            assert not execution.done()
            await asyncio.sleep(0.02)
        executor.cancel("canceled by user")
        return await execution

    assert asyncio.run(cancel_once_the_first_attempt_failed()) == "canceled"
    detail = store.get_run_detail(run.id)
    assert len(detail.attempts) == 1
    assert detail.run.status_reason == "canceled by user"


def test_daemon_shutdown_during_the_wait_is_not_held_by_it(tmp_path: Path):
    project = make_project(tmp_path, shutdown_grace="5min")
    failing_pipeline(project, "p", "retries: 3\n            retry_delay: 10min")
    daemon = DaemonProcess(project).start()
    try:
        status, body = daemon_request(project, "POST", "/api/v1/pipelines/p/runs", {})
        assert status in (200, 201, 202), body
        run_id = body["Id"]
        wait_until(
            lambda: [a for a in attempt_times(project, run_id) if a[1] is not None],
            timeout=30,
            message="the first attempt failed",
        )
        daemon.signal(signal.SIGTERM)
        # Far below both the retry delay and the shutdown grace: the wait did not hold it.
        assert daemon.wait_exit(timeout=60) == 0, daemon.log()
    finally:
        daemon.close()
    with project.store() as store:
        detail = store.get_run_detail(run_id)
    assert (detail.run.status, detail.run.status_reason) == ("canceled", "shutdown")
    assert len(detail.attempts) == 1
