"""README's SDK example, as written there, run as a notebook is: once, then again. The second
run publishes nothing new and creates no second schedule — it gets the published pipeline and
the schedule of the first run — whether the workspace reaches the store directly or a daemon
of the same config is running."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.projects import REPO, Project, make_project

PREP = """
import argparse, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--out")
out = pathlib.Path(parser.parse_args().out)
out.mkdir(parents=True, exist_ok=True)
(out / "rows.csv").write_text("1\\n2\\n3\\n")
print("prepared", flush=True)
"""
TRAIN = """
import argparse, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--data")
rows = (pathlib.Path(parser.parse_args().data) / "rows.csv").read_text().split()
print(f"trained on {len(rows)} rows", flush=True)
"""


def readme_sdk_example() -> str:
    """The Python block of README's section on ``scheduler.sdk``."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python pipelines in Azure ML SDK v1's words", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    return code


@pytest.fixture
def notebook(tmp_path: Path) -> Project:
    project = make_project(tmp_path / "notebook")
    (project.root / "scripts").mkdir()
    (project.root / "scripts" / "prep.py").write_text(PREP)
    (project.root / "scripts" / "train.py").write_text(TRAIN)
    (project.root / "example.py").write_text(textwrap.dedent(readme_sdk_example()))
    return project


def run_example(project: Project) -> subprocess.CompletedProcess[str]:
    """``python example.py`` in the project folder, where ``Workspace.from_config()`` looks."""
    env = {k: v for k, v in os.environ.items() if k != "PIPESCHED_CONFIG"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "example.py"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def state(project: Project) -> tuple[list[str], list[str], list[str]]:
    """Published ids, API schedules, and the statuses of the runs."""
    pipelines = json.loads(project.cli("pipelines", "--json").stdout)
    published = [v["id"] for p in pipelines for v in p["versions"]]
    schedules = json.loads(project.cli("schedules", "--json").stdout)
    api = [s["name"] for s in schedules if s["source"] == "api"]
    runs = json.loads(project.cli("runs", "--json", "--limit", "0").stdout)
    return published, api, [r["status"] for r in runs]


@pytest.mark.slow
def test_the_readme_example_runs_twice(notebook: Project):
    first = run_example(notebook)
    assert first.returncode == 0, first.stderr
    assert "trained on 3 rows" in first.stdout
    second = run_example(notebook)
    assert second.returncode == 0, second.stderr
    published, schedules, statuses = state(notebook)
    assert published == ["training@1"] and schedules == ["weekly"]
    assert statuses == ["completed", "completed"]
    assert (notebook.root / "pipelines" / "training" / "pipeline.yaml").is_file()
    assert notebook.cli("validate").returncode == 0


@pytest.mark.slow
def test_the_readme_example_runs_twice_beside_a_daemon(notebook: Project, daemons):
    daemon = daemons(notebook).start()
    wait_until(lambda: daemon.events("api_listening"), timeout=15)
    for _ in range(2):
        ran = run_example(notebook)
        assert ran.returncode == 0, ran.stderr
    published, schedules, statuses = state(notebook)
    assert published == ["training@1"] and schedules == ["weekly"]
    assert statuses == ["completed", "completed"]
    served = json.loads(notebook.cli("schedules", "--json").stdout)
    (weekly,) = [s for s in served if s["name"] == "weekly"]
    assert weekly["enabled"] and weekly["next_fire_times"]
