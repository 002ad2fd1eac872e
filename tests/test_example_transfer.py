"""The shipped transfer-and-query example (data_transfer -> sql -> python_script), run by the
real `pipesched run` command on a copy of its folder, as a user would try it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from tests.projects import make_project, shipped

EXAMPLE = shipped("pipelines", "transfer-and-query")


def test_example_stages_rolls_up_and_reports(tmp_path: Path):
    project = make_project(tmp_path)
    shutil.copytree(EXAMPLE, project.root / "pipelines" / EXAMPLE.name)
    done = project.cli("run", EXAMPLE.name, "-p", "min_amount=25", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    steps = {s["name"]: s for s in run["steps"]}
    assert [s["status"] for s in steps.values()] == ["completed"] * 4

    staged = Path(steps["stage"]["outputs"]["staged"])
    assert sorted(p.name for p in staged.iterdir()) == ["orders.csv", "shop.db"]  # no _SUCCESS

    with (Path(steps["rollup"]["outputs"]["summary"]) / "summary.csv").open(newline="") as f:
        summary = list(csv.DictReader(f))
    with (EXAMPLE / "orders.csv").open(newline="") as f:
        kept = [r for r in csv.DictReader(f) if float(r["amount"]) >= 25]
    assert sum(int(r["orders"]) for r in summary) == len(kept)
    expected = round(sum(float(r["amount"]) for r in kept), 2)
    assert steps["report"]["metrics"]["revenue"] == expected
    assert steps["report"]["metrics"]["regions"] == len({r["region"] for r in kept})
