"""Metric trends: ``pipesched metrics`` (table, sparklines on a terminal, JSON, CSV), the
``metrics`` of each run in ``runs --json``, ``GET /api/v1/pipelines/{name}/metrics`` and the
SDK's ``Experiment.get_runs()`` → ``run.get_metrics()``, embedded and through a daemon. Real runs
of a real pipeline, a real daemon."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project
from tests.test_cli_fast_reads import build_project

TRAIN = {"accuracy": 0.85, "loss": 0.15}
SCORE = {"rows": 120}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, list[str]]:
    return build_project(tmp_path_factory.mktemp("metrics") / "p")


@pytest.fixture(scope="module")
def live(built) -> Iterator[tuple[Project, list[str], str, str]]:
    """The project's daemon, its API URL and a token."""
    project, run_ids = built
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        created = project.cli("token", "create", "metrics")
        assert created.returncode == 0, created.stderr
        yield project, run_ids, listening["url"], created.stdout.strip().splitlines()[-1]
    finally:
        daemon.close()


def metrics_json(project: Project, *args: str) -> list[dict]:
    done = project.cli("metrics", "train", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_metrics_json_has_one_row_per_run_newest_first(built) -> None:
    project, run_ids = built
    rows = metrics_json(project)
    assert [row["id"] for row in rows] == run_ids[::-1]
    assert [set(row) for row in rows] == [{"id", "created_at", "status", "metrics"}] * 3
    assert rows[0]["metrics"] == {"train": TRAIN, "score": SCORE}
    assert [row["metrics"]["train"]["accuracy"] for row in rows] == [0.85, 0.9, 0.8]
    assert {row["status"] for row in rows} == {"completed"}


def test_metric_and_last_narrow_the_rows(built) -> None:
    project, run_ids = built
    rows = metrics_json(project, "--metric", "loss", "--last", "2")
    assert [row["id"] for row in rows] == run_ids[:0:-1]
    assert [row["metrics"] for row in rows] == [{"train": {"loss": 0.15}}, {"train": {"loss": 0.1}}]


def test_runs_json_carries_the_same_metrics(built) -> None:
    project, _ = built
    done = project.cli("runs", "--json")
    assert done.returncode == 0, done.stderr
    by_run = {run["id"]: run["metrics"] for run in json.loads(done.stdout)}
    assert by_run == {row["id"]: row["metrics"] for row in metrics_json(project)}


def test_csv_has_a_column_per_metric(built) -> None:
    project, run_ids = built
    done = project.cli("metrics", "train", "--csv")
    assert done.returncode == 0, done.stderr
    table = list(csv.reader(io.StringIO(done.stdout)))
    assert table[0] == ["id", "created_at", "status", "rows", "accuracy", "loss"]  # steps by id
    assert table[1][0] == run_ids[-1]
    assert table[1][3:] == ["120", "0.85", "0.15"]
    assert len(table) == 4


def test_table_off_a_terminal_has_no_sparklines(built) -> None:
    project, run_ids = built
    done = project.cli("metrics", "train")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ID", "CREATED", "STATUS", "rows", "accuracy", "loss"]
    assert lines[1].split()[0] == run_ids[-1] and lines[1].split()[-3:] == ["120", "0.85", "0.15"]
    assert len(lines) == 4 and not any(ch in done.stdout for ch in "▁█")


def test_a_terminal_gets_a_sparkline_per_metric(built) -> None:
    """Oldest run first: 0.8, 0.9, 0.85 draw low, high, middle."""
    project, _ = built
    leader, follower = pty.openpty()
    env = {**os.environ, "PIPESCHED_CONFIG": str(project.config_path), "NO_COLOR": "1"}
    env["COLUMNS"] = "120"
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "metrics", "train"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
        cwd=project.root,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closed: the command ended
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    text = b"".join(chunks).decode()
    trends = {line.split()[0]: line.split()[1] for line in text.splitlines() if "▁" in line}
    assert trends == {"accuracy": "▁█▄", "loss": "█▁▄"}
    assert "rows" not in trends  # the same value each run: a flat line says nothing


def test_rest_route_gives_what_the_command_prints(live) -> None:
    project, _, _, _ = live
    status, answer = daemon_request(project, "GET", "/api/v1/pipelines/train/metrics?last=0")
    assert status == 200
    assert answer == metrics_json(project, "--last", "0")
    status, only = daemon_request(project, "GET", "/api/v1/pipelines/train/metrics?metric=rows")
    assert status == 200 and [row["metrics"] for row in only] == [{"score": SCORE}] * 3


def sdk_metrics(env: dict[str, str], cwd: Path) -> dict[str, dict]:
    """``{run id: run.get_metrics()}`` of every run ``Experiment.get_runs()`` lists, in a fresh
    interpreter as a notebook would."""
    code = (
        "import json\n"
        "from scheduler.sdk import Experiment, Workspace\n"
        "ws = Workspace.from_config()\n"
        "runs = Experiment(ws, 'train').get_runs()\n"
        "print(json.dumps({run.id: run.get_metrics() for run in runs}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIPESCHED_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**clean, **env},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sdk_reads_each_listed_runs_metrics(live, tmp_path: Path) -> None:
    """Embedded (the config) and through the daemon (URL and token), as ``show`` merges them."""
    project, run_ids, url, token = live
    expected = {
        row["id"]: {**row["metrics"]["train"], **row["metrics"]["score"]}
        for row in metrics_json(project)
    }
    embedded = sdk_metrics({"PIPESCHED_CONFIG": str(project.config_path)}, project.root)
    assert embedded == expected
    remote = sdk_metrics({"PIPESCHED_URL": url, "PIPESCHED_TOKEN": token}, tmp_path)
    assert remote == expected
    assert set(remote) == set(run_ids)
