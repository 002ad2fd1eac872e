"""The web benchmark's seeded history reads back through the real commands as a busy daemon's
would: the bulk rows must stay in step with the store's schema and with what the reads expect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks.web_history import DROPS, FREQUENT, RARE, build, copy_seeded

pytestmark = pytest.mark.slow  # checks a benchmark's seeder, not pipesched: the second stage


def _json(project, *args: str):
    done = project.cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_seeded_history_reads_back_like_a_real_one(tmp_path: Path) -> None:
    build(tmp_path / "built" / "project", 3000)
    history = copy_seeded(tmp_path / "built", tmp_path / "copy")
    project = history.project

    runs = _json(project, "runs", "--limit", "0")
    assert len(runs) == 3000 + 5  # the bulk runs and the real ones
    assert runs[0]["id"] == history.newest_real_run
    assert {"completed", "failed", "canceled"} <= {r["status"] for r in runs}
    kinds = {r["trigger"].partition(":")[0] for r in runs}
    assert kinds == {"manual", "api", "schedule", "file"}
    assert any(r["schedule"] == RARE for r in runs)
    assert [r["id"] for r in runs].index(history.old_run) > 0.85 * len(runs)  # deep down

    newest = _json(project, "show", history.newest_real_run)
    assert [s["status"] for s in newest["steps"]] == ["completed"] * 3
    log = project.cli("logs", history.newest_real_run, "--step", "fit")
    assert log.returncode == 0, log.stderr
    assert "epoch 299 ok" in log.stdout  # the copy's log paths point into the copy

    failed = _json(project, "show", next(r["id"] for r in runs if r["status"] == "failed"))
    assert [s["status"] for s in failed["steps"]][1:] == ["failed", "skipped"]

    outcomes = {f["outcome"] for f in _json(project, "fires", FREQUENT, "--limit", "0")}
    assert {"started", "skipped", "missed"} <= outcomes
    drops = _json(project, "fires", DROPS, "--limit", "0")
    assert drops and all(f["path"].startswith("inbox/") for f in drops)

    schedules = {s["name"]: s for s in _json(project, "schedules")}
    assert schedules[FREQUENT]["enabled"] is False
    assert schedules["nightly-train"]["enabled"] is True

    metrics = _json(project, "metrics", "train", "--last", "50")
    assert any(row["metrics"].get("evaluate", {}).get("accuracy") for row in metrics)
    models = _json(project, "models")
    assert len({m["name"] for m in models}) >= 5
