"""The services called directly, as every front end calls them: a real SQLite store in a
project folder, real log files, and — for the client — a real daemon on the project's socket.
Each test checks what a user would: which run ``latest`` means, what a followed log prints and
when it stops, what the store holds after a change made without a daemon."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.core.errors import NotFound
from scheduler.services import runs
from scheduler.services.cancel import RunAlreadyFinished
from scheduler.services.client import ServiceClient, local_daemon
from scheduler.services.daemon_http import DaemonNotRunning
from scheduler.services.logs import open_logs, read_step_log
from scheduler.services.pipelines import check_pipeline_name, list_pipelines
from scheduler.services.publish import publish
from scheduler.services.schedules import (
    UnknownSchedule,
    create_schedule,
    delete_schedule,
    get_schedule,
    list_fires,
    list_schedules,
    set_override,
)
from scheduler.services.submit import (
    execute_foreground,
    load_definition,
    record_foreground_run,
    working_copy,
)
from scheduler.store import Store
from scheduler.store.records import Metric, Owner
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

REPO = str(Path(__file__).resolve().parents[1])
STEPS = [("train", "Train", "python_script"), ("score", "Score", "python_script")]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.pipeline(
        "train",
        """
        description: trains
        steps:
          train:
            type: python_script
            script: train.py
        """,
        {"train.py": "print('trained')\n"},
    )
    project.schedules(
        """
        schedules:
          - name: nightly
            pipeline: train
            cron: '0 3 * * *'
        """
    )
    return project


@pytest.fixture
def store(project: Project) -> Iterator[Store]:
    with project.store() as opened:
        yield opened


def add_run(store: Store, pipeline: str = "train", *, owner: Owner | None = None) -> str:
    run = store.create_run(
        pipeline=pipeline,
        content_hash="c0ffee",
        experiment=pipeline,
        parameters={},
        trigger="manual",
        steps=STEPS,
        owner=owner,
    )
    return run.id


def dead_owner() -> Owner:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return Owner(host=socket.gethostname(), pid=gone.pid, start_ticks=1)


# -- runs ---------------------------------------------------------------------------------------


def test_a_run_is_named_by_a_prefix_or_by_latest(store: Store):
    first = add_run(store)
    other = add_run(store, "other")
    assert runs.resolve_run(store, first[:11]) == first
    assert runs.resolve_run(store, "latest") == other
    assert runs.resolve_run(store, "LATEST", pipeline="train") == first
    assert runs.get_run(store, "latest").run.id == other


def test_latest_without_runs_says_there_is_none(store: Store):
    with pytest.raises(NotFound, match="no run of pipeline 'train' yet"):
        runs.resolve_run(store, "latest", pipeline="train")


def test_runs_are_listed_newest_first_and_filtered(store: Store):
    ids = [add_run(store), add_run(store, "other"), add_run(store)]
    assert [r.id for r in runs.list_runs(store)] == ids[::-1]
    assert [r.id for r in runs.list_runs(store, pipeline="train", limit=1)] == [ids[2]]
    assert [r.id for r in runs.list_runs(store, before=ids[2])] == ids[1::-1]


def test_metric_history_has_one_row_per_run_newest_first(store: Store):
    now = datetime.now(UTC)
    older, newer = add_run(store), add_run(store)
    store.add_metrics(older, [Metric("train", 1, "accuracy", "scalar", 0.8, now)])
    store.add_metrics(
        newer,
        [
            Metric("train", 1, "accuracy", "scalar", 0.9, now),
            Metric("score", 1, "loss", "scalar", 0.1, now + timedelta(seconds=1)),
        ],
    )
    history = runs.metric_history(store, "train")
    assert [row.id for row in history] == [newer, older]
    assert history[0].metrics == {"train": {"accuracy": 0.9}, "score": {"loss": 0.1}}
    only = runs.metric_history(store, "train", metric="loss")
    assert [row.metrics for row in only] == [{"score": {"loss": 0.1}}, {}]
    assert history[1].to_json()["status"] == "queued"


# -- logs ---------------------------------------------------------------------------------------


def started_step(store: Store, tmp_path: Path, run_id: str, step: str, text: str) -> Path:
    log = tmp_path / f"{run_id}-{step}.log"
    log.write_text(text)
    store.start_run(run_id)
    store.begin_attempt(run_id, step, 1, log_path=str(log))
    return log


def test_a_step_log_is_found_by_display_name_and_tailed(store: Store, tmp_path: Path):
    run_id = add_run(store)
    started_step(store, tmp_path, run_id, "train", "a\nb\nc\n")
    logs = open_logs(store, run_id[:10], "Train", None)
    assert logs.step == "train"
    assert [data for _, data in logs.initial(2)] == [b"b\nc\n"]


def test_an_unknown_step_names_the_steps_there_are(store: Store):
    run_id = add_run(store)
    with pytest.raises(NotFound, match="steps: train \\(Train\\), score \\(Score\\)"):
        open_logs(store, run_id, "nope", None)


def test_following_a_step_gives_what_it_adds_then_its_outcome(store: Store, tmp_path: Path):
    run_id = add_run(store)
    log = started_step(store, tmp_path, run_id, "train", "first\n")
    logs = open_logs(store, run_id, "train", None)
    assert [data for _, data in logs.initial()] == [b"first\n"]
    followed = logs.follow(store, sleep=lambda _: None)
    with log.open("a") as handle:
        handle.write("second\n")
    assert next(followed)[1] == b"second\n"  # type: ignore[index]
    store.end_attempt(run_id, "train", 1, status="completed", exit_code=0)
    assert list(followed) == [True]


def test_read_step_log_follows_until_the_step_ends(store: Store, tmp_path: Path):
    run_id = add_run(store)
    log = started_step(store, tmp_path, run_id, "train", "one\n")

    def finish_later() -> None:
        with log.open("a") as handle:
            handle.write("two\n")
        store.end_attempt(run_id, "train", 1, status="failed", exit_code=1)
        store.finish_run(run_id, "failed")

    timer = threading.Timer(0.3, finish_later)
    timer.start()
    try:
        assert b"".join(read_step_log(store, run_id, "train", follow=True)) == b"one\ntwo\n"
    finally:
        timer.join()
    assert b"".join(read_step_log(store, run_id, "train")) == b"one\ntwo\n"


# -- schedules, fires, pipelines ------------------------------------------------------------------


def test_schedules_list_the_file_and_the_api_ones(project: Project, store: Store):
    config = project.config()
    created = create_schedule(
        config, store, {"name": "hourly", "pipeline": "train", "cron": "0 * * * *"}
    )
    assert (created.name, created.source, created.enabled) == ("hourly", "api", True)
    names = {s.name: s.source for s in list_schedules(config, store)}
    assert names == {"nightly": "file", "hourly": "api"}
    assert len(get_schedule(config, store, "nightly").next_fire_times) == 5
    delete_schedule(config, store, "hourly")
    assert [s.name for s in list_schedules(config, store)] == ["nightly"]


def test_an_override_without_a_daemon_is_kept_for_its_next_start(project: Project, store: Store):
    config = project.config()
    set_override(config, store, "nightly", False)
    summary = get_schedule(config, store, "nightly")
    assert (summary.enabled, summary.override, summary.next_fire_times) == (False, False, [])
    with pytest.raises(UnknownSchedule, match="known: nightly"):
        set_override(config, store, "nigthly", True)


def test_fires_of_a_typo_are_an_error_not_an_empty_list(project: Project, store: Store):
    config = project.config()
    assert list_fires(store, "nightly", config=config) == []
    with pytest.raises(UnknownSchedule) as caught:
        list_fires(store, "nigthly", config=config)
    assert caught.value.known == {"nightly"}


def test_pipelines_list_working_copies_and_published_versions(project: Project, store: Store):
    config = project.config()
    publish(config, store, "train")
    (entry,) = list_pipelines(config, store)
    assert (entry.name, entry.default_version) == ("train", "1")
    assert entry.endpoint.endswith("/api/v1/pipelines/train/runs")
    assert entry.version_urls["1"].endswith("/api/v1/pipelines/train/versions/1/runs")
    check_pipeline_name(config, store, "train")
    with pytest.raises(NotFound):
        check_pipeline_name(config, store, str(project.root / "pipelines" / "train"))


# -- submit ---------------------------------------------------------------------------------------


def test_a_foreground_run_is_recorded_then_executed_here(project: Project, store: Store):
    config = project.config()
    definition, label = load_definition(
        config, store, pipeline="train", continue_on_step_failure=True
    )
    assert label is None and definition.continue_on_step_failure is True
    run = record_foreground_run(config, store, working_copy(config, "train"), {})
    assert run.owner is not None and run.owner.pid == os.getpid()
    outcome = execute_foreground(config, store, definition, run, [])
    assert (outcome.status, outcome.canceled) == ("completed", False)
    assert b"".join(read_step_log(store, run.id, "train")) == b"trained\n"


# -- the client: the daemon, or the store -------------------------------------------------------


def client(project: Project, store: Store) -> ServiceClient:
    return ServiceClient(project.config(), lambda: nullcontext(store))


def test_without_a_daemon_changes_go_to_the_store(project: Project, store: Store):
    services = client(project, store)
    assert services.daemon() is None
    toggled = services.set_schedule_enabled("nightly", False)
    assert (toggled.enabled, toggled.by_daemon) == (False, False)
    assert store.schedule_states()["nightly"].override is False
    with pytest.raises(DaemonNotRunning):
        services.trigger_schedule("nightly")


def test_without_a_daemon_a_run_of_a_dead_owner_is_closed(project: Project, store: Store):
    run_id = add_run(store, owner=dead_owner())
    store.start_run(run_id, dead_owner())
    canceled = client(project, store).cancel(run_id[:9])
    assert (canceled.run_id, canceled.by_daemon) == (run_id, False)
    run = store.get_run(run_id)
    assert (run.status, run.status_reason) == ("canceled", "canceled by user")
    with pytest.raises(RunAlreadyFinished, match="has already finished: canceled"):
        client(project, store).cancel("latest")


def test_with_a_daemon_changes_go_through_it(project: Project, store: Store):
    daemon = DaemonProcess(project, env={"PYTHONPATH": REPO}).start()
    try:
        services = client(project, store)
        assert services.daemon() is not None
        toggled = services.set_schedule_enabled("nightly", False)
        assert toggled.by_daemon
        services.set_schedule_enabled("nightly", True)
        fired = services.trigger_schedule("nightly")
        assert fired.run_id is not None and fired.outcome == "started"
        wait_until(lambda: store.get_run(fired.run_id).status == "completed", timeout=30)
        created = services.create_schedule(
            {"name": "hourly", "pipeline": "train", "cron": "0 * * * *"}
        )
        assert created["source"] == "api"
        services.delete_schedule("hourly")
        with pytest.raises(NotFound):
            services.delete_schedule("hourly")
    finally:
        daemon.stop()
        daemon.close()
    assert local_daemon(project.state_dir) is None


def test_the_client_imports_only_the_standard_library():
    code = (
        "import sys, scheduler.services.client; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'pydantic', 'fastapi', 'yaml'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO},
        check=True,
    )
    assert done.stdout.strip() == "[]"
