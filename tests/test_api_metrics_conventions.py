"""``/metrics`` of a real daemon after real runs, read the way Prometheus reads it: counters
named ``_total``, a cumulative histogram, timestamps in seconds, ``build_info`` — each value
checked against the store, and counters that carry on across a restart."""

from __future__ import annotations

import platform
from datetime import datetime
from pathlib import Path

import requests
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

import scheduler
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project, make_project

TIMEOUT = 30
FINISHED = ("completed", "failed", "canceled")


def scrape(url: str, accept: str | None = None) -> str:
    headers = {"Accept": accept} if accept else {}
    response = requests.get(f"{url}/metrics", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200
    return response.text


def families(url: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(scrape(url))}


def samples(family, name: str | None = None, labels: tuple[str, ...] = ()) -> dict[tuple, float]:
    """``{values of labels: value}`` of a family's samples called ``name``."""
    wanted = name or family.name
    return {
        tuple(s.labels[label] for label in labels): s.value
        for s in family.samples
        if s.name == wanted
    }


def make_metrics_project(tmp_path: Path, database_url: str | None = None) -> Project:
    project = make_project(tmp_path, shutdown_grace="2s", database_url=database_url)
    project.pipeline(
        "ok",
        "steps:\n  work: {type: python_script, script: ok.py, allow_reuse: false}\n",
        {"ok.py": "print('fine')\n"},
    )
    project.pipeline(
        "bad",
        "steps:\n  work: {type: python_script, script: bad.py, retries: 1}\n",
        {"bad.py": "import sys\nsys.exit(2)\n"},
    )
    project.schedules(
        "schedules:\n"
        "  - {name: often, pipeline: ok, interval: 1s}\n"
        "  - {name: nightly, pipeline: ok, cron: '0 3 * * *'}\n"
    )
    return project


def finished_runs(project: Project) -> list:
    with project.store() as store:
        return [r for r in store.list_runs(limit=0) if r.status in FINISHED]


def test_metrics_follow_prometheus_conventions_after_real_runs(
    tmp_path: Path, daemons, database_url: str
):
    sqlite = database_url.startswith("sqlite")
    project = make_metrics_project(tmp_path, None if sqlite else database_url)
    daemon: DaemonProcess = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    url = listening["url"]
    for pipeline in ("ok", "ok", "bad"):
        status, body = daemon_request(project, "POST", f"/api/v1/pipelines/{pipeline}/runs", {})
        assert status == 202, body
    # The interval schedule fires on its own; once one of its runs completed, stop it.
    wait_until(
        lambda: [r for r in finished_runs(project) if r.schedule == "often"],
        timeout=30,
        message="a run of the schedule finished",
    )
    assert daemon_request(project, "POST", "/api/v1/schedules/often/disable")[0] == 200
    wait_until(
        lambda: len(finished_runs(project)) == len(_runs(project)) >= 4,
        timeout=30,
        message="every run finished",
    )

    found = families(url)
    with project.store() as store:
        runs = store.list_runs(limit=0)
        fires = store.list_fires("often", limit=0)
        attempts = [a for r in runs for a in store.get_run_detail(r.id).attempts]

    finished = found["pipesched_runs_finished"]
    assert finished.type == "counter"
    expected: dict[tuple, float] = {}
    for run in runs:
        key = (run.pipeline, run.status)
        expected[key] = expected.get(key, 0) + 1
    assert samples(finished, "pipesched_runs_finished_total", ("pipeline", "status")) == expected
    assert expected[("bad", "failed")] == 1

    fired = found["pipesched_fires"]
    assert fired.type == "counter"
    counted = samples(fired, "pipesched_fires_total", ("schedule", "outcome"))
    started = sum(1 for f in fires if f.outcome == "started")
    assert counted[("often", "started")] == started >= 1
    settled = [f for f in fires if f.outcome != "claimed"]  # a claimed fire is still on its way
    assert sum(v for (schedule, _), v in counted.items() if schedule == "often") == len(settled)

    durations = found["pipesched_step_duration_seconds"]
    assert durations.type == "histogram"
    by_pipeline = {"ok": [], "bad": []}
    for run in runs:
        by_pipeline[run.pipeline] += [
            (a.finished_at - a.started_at).total_seconds() for a in attempts if a.run_id == run.id
        ]
    assert len(by_pipeline["bad"]) == 2  # both attempts of the retried step
    counts = samples(durations, "pipesched_step_duration_seconds_count", ("pipeline",))
    sums = samples(durations, "pipesched_step_duration_seconds_sum", ("pipeline",))
    for pipeline, seconds in by_pipeline.items():
        assert counts[(pipeline,)] == len(seconds)
        assert abs(sums[(pipeline,)] - sum(seconds)) < 1e-3
        buckets = [
            (float(s.labels["le"]), s.value)
            for s in durations.samples
            if s.name.endswith("_bucket") and s.labels["pipeline"] == pipeline
        ]
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
        assert buckets[-1] == (float("inf"), len(seconds))
        for bound, value in buckets:
            assert value == sum(1 for s in seconds if s <= bound)

    last_success = found["pipesched_schedule_last_success_timestamp_seconds"]
    assert last_success.type == "gauge"
    completed = [r for r in runs if r.schedule == "often" and r.status == "completed"]
    latest = max(r.finished_at for r in completed)
    assert samples(last_success, labels=("schedule",)) == {("often",): latest.timestamp()}

    next_fire = found["pipesched_schedule_next_fire_timestamp_seconds"]
    assert next_fire.type == "gauge"
    schedules = daemon_request(project, "GET", "/api/v1/schedules")[1]
    nightly = next(s for s in schedules if s["name"] == "nightly")
    expected_next = datetime.fromisoformat(nightly["next_fire_times"][0]).timestamp()
    assert samples(next_fire, labels=("schedule",)) == {
        ("nightly",): expected_next
    }  # "often" is disabled

    info = found["pipesched_build_info"]
    assert info.type == "gauge"
    assert samples(info, labels=("version", "python")) == {
        (scheduler.__version__, platform.python_version()): 1.0
    }
    (labels,) = [s.labels for s in info.samples]
    assert set(labels) == {"version", "python"}

    # The same figures after a restart: counters carry on from the store, not from zero.
    assert daemon.stop() == 0
    daemon = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    again = families(listening["url"])
    assert (
        samples(
            again["pipesched_runs_finished"],
            "pipesched_runs_finished_total",
            ("pipeline", "status"),
        )
        == expected
    )
    assert (
        samples(
            again["pipesched_step_duration_seconds"],
            "pipesched_step_duration_seconds_count",
            ("pipeline",),
        )
        == counts
    )


def _runs(project: Project) -> list:
    with project.store() as store:
        return store.list_runs(limit=0)


def test_openmetrics_scrapers_are_told_the_units(tmp_path: Path, daemons):
    project = make_metrics_project(tmp_path)
    project.schedules("schedules:\n  - {name: nightly, pipeline: ok, cron: '0 3 * * *'}\n")
    daemon: DaemonProcess = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    status, body = daemon_request(project, "POST", "/api/v1/pipelines/ok/runs", {})
    assert status == 202, body
    wait_until(lambda: finished_runs(project), timeout=30, message="the run finished")
    text = scrape(listening["url"], accept="application/openmetrics-text; version=1.0.0")
    units = {family.name: family.unit for family in openmetrics_families(text)}
    assert units["pipesched_step_duration_seconds"] == "seconds"
    assert units["pipesched_schedule_next_fire_timestamp_seconds"] == "seconds"
    assert units["pipesched_schedule_last_success_timestamp_seconds"] == "seconds"
    assert units["pipesched_state_dir_free_bytes"] == "bytes"
    assert units["pipesched_runs_finished"] == ""
    assert text.rstrip().endswith("# EOF")
