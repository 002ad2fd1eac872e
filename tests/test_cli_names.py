"""Names as users type them: ``latest`` wherever a run id goes (with ``--pipeline``, the newest
run of that pipeline), and unknown names answered with the names there are — and the close
one when it looks like a typo — from the CLI with or without a daemon, and from the REST API.
A real SQLite store filled through the Store API; the real entry point; a real daemon where
one is needed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from scheduler.cli import main
from scheduler.core.clock import Clock
from scheduler.store import Store
from tests.conftest import wait_until
from tests.daemon_harness import daemon_request
from tests.projects import Project, make_project

STEPS = [("prep", "Prepare Data", "python_script"), ("train", "Train Model", "python_script")]
SCHEDULES = """
schedules:
  - {name: weekly-training, pipeline: training, cron: '0 0 * * MON'}
  - {name: nightly-scoring, pipeline: scoring, cron: '0 3 * * *'}
"""
KNOWN_SCHEDULES = "known: nightly-scoring, weekly-training"


class TickClock(Clock):
    """Each reading one second after the last, so runs get ids in creation order."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
        self.lock = threading.Lock()

    def now(self) -> datetime:
        with self.lock:
            self.moment += timedelta(seconds=1)
            return self.moment


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path / "project")
    for name in ("training", "scoring"):
        project.pipeline(name, "steps:\n  s: {type: command, command: ['true']}\n")
    project.schedules(SCHEDULES)
    return project


@pytest.fixture
def store(project: Project) -> Iterator[Store]:
    with Store.open(project.config().database_url, clock=TickClock()) as opened:
        yield opened


def pipesched(project: Project, *args: str) -> Result:
    """The real entry point in this process, as ``pipesched ARGS -c CONFIG``."""
    runner = CliRunner()
    with runner.isolation(env={"NO_COLOR": "1"}) as (out, err, _):
        try:
            main([*args, "-c", str(project.config_path)])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        return Result(code, out.getvalue().decode(), err.getvalue().decode())


def add_run(store: Store, project: Project, pipeline: str, *, finished: bool = True) -> str:
    """A run of ``pipeline`` whose two steps each logged a line naming the run."""
    run = store.create_run(
        pipeline=pipeline,
        content_hash="c0ffee",
        experiment=pipeline,
        parameters={},
        trigger="manual",
        steps=STEPS,
    )
    store.start_run(run.id)
    for step, _, _ in STEPS:
        folder = project.state_dir / "runs" / run.id / step
        folder.mkdir(parents=True)
        log = folder / "1.log"
        log.write_text(f"{step} of {run.id}\n")
        store.begin_attempt(run.id, step, 1, log_path=str(log), workdir=str(folder))
        if finished:
            store.end_attempt(run.id, step, 1, status="completed", exit_code=0)
    if finished:
        store.finish_run(run.id, "completed")
    return run.id


# -- latest -----------------------------------------------------------------------------------


def test_show_latest_is_the_newest_run_or_the_newest_of_a_pipeline(project, store):
    training = add_run(store, project, "training")
    scoring = add_run(store, project, "scoring")
    newest = pipesched(project, "show", "latest", "--json")
    assert newest.exit_code == 0, newest.stderr
    assert json.loads(newest.stdout)["id"] == scoring
    of_training = pipesched(project, "show", "latest", "--pipeline", "training", "--json")
    assert json.loads(of_training.stdout)["id"] == training


def test_logs_latest_prints_the_newest_runs_step(project, store):
    add_run(store, project, "training")
    scoring = add_run(store, project, "scoring")
    printed = pipesched(project, "logs", "latest", "--step", "train")
    assert (printed.exit_code, printed.stdout) == (0, f"train of {scoring}\n")


def test_logs_latest_follows_a_running_run_to_its_end(project, store):
    running = add_run(store, project, "training", finished=False)

    def finish_soon() -> None:
        store.finish_run(running, "completed")

    timer = threading.Timer(0.5, finish_soon)
    timer.start()
    try:
        followed = pipesched(project, "logs", "latest", "-f")
    finally:
        timer.join()
    assert followed.exit_code == 0, followed.stderr
    assert f"train of {running}" in followed.stdout


def test_cancel_latest_of_a_pipeline(project, store):
    open_run = add_run(store, project, "training", finished=False)
    add_run(store, project, "scoring")
    canceled = pipesched(project, "cancel", "latest", "--pipeline", "training")
    assert (canceled.exit_code, canceled.stdout) == (0, f"canceled {open_run}\n")
    assert store.get_run(open_run).status == "canceled"


def test_latest_without_runs_says_there_is_none(project, store):
    shown = pipesched(project, "show", "latest", "--pipeline", "training")
    assert shown.exit_code == 1
    assert shown.stderr == (
        "error: there is no run of pipeline 'training' yet (start one with: pipesched run)\n"
    )


# -- unknown names ----------------------------------------------------------------------------


def test_an_unknown_step_suggests_the_close_one(project, store):
    run_id = add_run(store, project, "training")
    printed = pipesched(project, "logs", "latest", "--step", "trian")
    assert printed.exit_code == 1
    assert printed.stderr == (
        f"error: run {run_id} has no step 'trian' (did you mean 'train'? "
        "steps: prep (Prepare Data), train (Train Model))\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ("schedule", "enable", "weekly-trainig"),
        ("schedule", "disable", "weekly-trainig"),
        ("fires", "weekly-trainig"),
    ],
)
def test_an_unknown_schedule_lists_the_schedules(project, store, command):
    refused = pipesched(project, *command)
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: no schedule 'weekly-trainig' (did you mean 'weekly-training'? {KNOWN_SCHEDULES})\n"
    )


@pytest.mark.parametrize("command", [("run", "trainig"), ("publish", "trainig")])
def test_an_unknown_pipeline_lists_the_pipelines(project, store, command):
    refused = pipesched(project, *command)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "error: no pipeline named 'trainig' (did you mean 'training'? known: scoring, training)\n"
    )


def test_the_daemon_lists_the_schedules_to_the_cli_and_the_rest_api(project, store, daemons):
    daemon = daemons(project).start()
    wait_until(lambda: daemon.events("api_listening"), timeout=15)
    for command in ("trigger", "enable", "disable"):
        refused = project.cli("schedule", command, "weekly-trainig")
        assert refused.returncode == 1
        assert refused.stderr == (
            "error: no schedule 'weekly-trainig' "
            f"(did you mean 'weekly-training'? {KNOWN_SCHEDULES})\n"
        )
    status, answer = daemon_request(project, "POST", "/api/v1/schedules/nope/trigger")
    assert (status, answer) == (404, {"detail": f"no schedule 'nope' ({KNOWN_SCHEDULES})"})
    status, answer = daemon_request(project, "GET", "/api/v1/schedules/nope/fires")
    assert (status, answer) == (404, {"detail": f"no schedule 'nope' ({KNOWN_SCHEDULES})"})
