"""Shell completion as a shell asks for it: the real ``pipesched`` in a subprocess, driven by
click's protocol (``_PIPESCHED_COMPLETE=bash_complete`` with ``COMP_WORDS``/``COMP_CWORD``),
against a real SQLite store holding runs, and the script of ``pipesched completion bash``
loaded and run by a real ``bash``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest

from scheduler.cli.options import complete_metric
from scheduler.core.clock import Clock
from scheduler.store import Store
from scheduler.store.records import Metric
from tests.projects import REPO, Project, make_project, shipped

STEPS = [("prep", "Prepare Data", "python_script"), ("train", "Train Model", "python_script")]


class TickClock(Clock):
    """Each reading one second after the last, so runs get ids in creation order."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
        self.lock = threading.Lock()

    def now(self) -> datetime:
        with self.lock:
            self.moment += timedelta(seconds=1)
            return self.moment


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path / "project")
    for name in ("training", "scoring"):
        project.pipeline(
            name, f"name: {name}\nsteps:\n  prep: {{type: python_script, script: p.py}}\n"
        )
    shutil.copy(shipped("config", "schedules.yaml"), project.root / "config" / "schedules.yaml")
    return project


@pytest.fixture
def store(project: Project) -> Iterator[Store]:
    with Store.open(project.config().database_url, clock=TickClock()) as opened:
        yield opened


def add_run(store: Store, pipeline: str, metrics: dict[str, float] | None = None) -> str:
    run = store.create_run(
        pipeline=pipeline,
        content_hash="c0ffee",
        experiment=pipeline,
        parameters={},
        trigger="manual",
        steps=STEPS,
    )
    store.start_run(run.id)
    now = datetime.now(UTC)
    store.add_metrics(
        run.id, [Metric("train", 1, name, "scalar", v, now) for name, v in (metrics or {}).items()]
    )
    store.finish_run(run.id, "completed")
    return run.id


def complete(project: Project, line: str) -> list[str]:
    """The candidates bash would be given for the last word of ``line`` (TAB at its end)."""
    words = line.split(" ")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PIPESCHED_CONFIG": str(project.config_path),
        "_PIPESCHED_COMPLETE": "bash_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
    }
    done = subprocess.run(
        [sys.executable, "-m", "scheduler.cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=project.root,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return [row.partition(",")[2] for row in done.stdout.splitlines() if row]


def test_run_ids_complete_newest_first_and_by_prefix(project: Project, store: Store):
    older, newer = add_run(store, "training"), add_run(store, "scoring")
    assert complete(project, "pipesched show ") == [newer, older]
    assert complete(project, f"pipesched cancel {older[:11]}") == [older]
    assert complete(project, "pipesched logs la") == ["latest"]
    # --pipeline on the line narrows the ids to that pipeline's runs
    assert complete(project, "pipesched show --pipeline training ") == [older]


def test_steps_of_the_run_on_the_line_complete(project: Project, store: Store):
    run_id = add_run(store, "training")
    assert complete(project, f"pipesched logs {run_id[:11]} --step ") == ["prep", "train"]
    assert complete(project, "pipesched logs latest --step t") == ["train"]
    assert complete(project, "pipesched logs zzzz --step ") == []


def test_schedules_of_the_shipped_config_complete(project: Project):
    assert complete(project, "pipesched schedule enable ") == [
        "weekly-diabetes-training",
        "nightly-by-recurrence",
    ]
    assert complete(project, "pipesched schedule trigger n") == ["nightly-by-recurrence"]
    assert complete(project, "pipesched fires w") == ["weekly-diabetes-training"]


def test_pipelines_complete(project: Project):
    assert complete(project, "pipesched run ") == ["scoring", "training"]
    assert complete(project, "pipesched publish t") == ["training"]
    assert complete(project, "pipesched runs --pipeline s") == ["scoring"]


def test_completion_without_a_store_yet_completes_no_run(project: Project):
    assert not (project.state_dir / "pipesched.db").exists()
    assert complete(project, "pipesched show ") == []


def test_metric_names_of_the_pipeline_on_the_line(project: Project, store: Store):
    add_run(store, "training", {"accuracy": 0.9, "auc": 0.8})
    add_run(store, "scoring", {"rows": 10.0})

    @click.command()
    @click.argument("pipeline")
    @click.option("--metric", shell_complete=complete_metric)
    def metrics(pipeline: str, metric: str | None) -> None: ...

    ctx = click.Context(metrics)
    ctx.params.update(pipeline="training", config_path=str(project.config_path))
    names = [item.value for item in complete_metric(ctx, metrics.params[1], "a")]
    assert names == ["accuracy", "auc"]


def test_the_completion_reads_need_only_the_standard_library():
    """A TAB pays for no SQLAlchemy: the module the completers read with loads nothing else."""
    probe = (
        "import json, sys; before = set(sys.modules);"
        "import scheduler.store.completion_reads;"
        "print(json.dumps(sorted({n.partition('.')[0] for n in set(sys.modules) - before})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(done.stdout)
    assert [name for name in loaded if name not in sys.stdlib_module_names] == ["scheduler"]


@pytest.fixture
def on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has a ``pipesched`` that runs this checkout."""
    folder = tmp_path / "bin"
    folder.mkdir()
    launcher = folder / "pipesched"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m scheduler.cli "$@"\n')
    launcher.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
    }


def test_the_bash_script_loads_and_completes_in_bash(project: Project, on_path: dict[str, str]):
    script = (
        "source <(pipesched completion bash)\n"
        "complete -p pipesched\n"
        "COMP_WORDS=(pipesched schedule enable w); COMP_CWORD=3\n"
        "_pipesched_completion pipesched\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**on_path, "PIPESCHED_CONFIG": str(project.config_path)}
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    registered, *candidates = done.stdout.splitlines()
    assert "-F _pipesched_completion" in registered and registered.endswith(" pipesched")
    assert candidates == ["weekly-diabetes-training"]


@pytest.mark.parametrize(("shell", "marker"), [("zsh", "compdef"), ("fish", "complete")])
def test_zsh_and_fish_scripts_are_printed(on_path: dict[str, str], shell: str, marker: str):
    done = subprocess.run(
        ["pipesched", "completion", shell],
        env=on_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout and "_PIPESCHED_COMPLETE" in done.stdout


CONFIGS = {
    "shipped": None,  # the shipped config/pipesched.yaml as it is
    "explicit": "state_dir: ~/x/../state\ndatabase: postgresql+psycopg://u@h/db\n"
    "pipelines_dir: ../elsewhere\nschedules: more/schedules.yaml\n",
    "defaults": "datastores: {default: {path: null}}\n",
}


@pytest.mark.parametrize("case", list(CONFIGS))
@pytest.mark.parametrize("state_directory", [None, "/var/lib/pipesched:/var/lib/other"])
def test_a_tab_finds_the_places_the_validated_config_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, state_directory: str | None
):
    """Completion reads the config with PyYAML alone; it must land where load_config does."""
    from scheduler.cli.options import completion_places
    from scheduler.definitions.config import load_config

    shutil.copytree(shipped("config"), tmp_path / "config")
    config_file = tmp_path / "config" / "pipesched.yaml"
    if CONFIGS[case] is not None:
        config_file.write_text(CONFIGS[case])
    if state_directory is None:
        monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    else:
        monkeypatch.setenv("STATE_DIRECTORY", state_directory)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(config_file)
    ctx = click.Context(click.Command("show"))
    ctx.params["config_path"] = str(config_file)
    places = completion_places(ctx)
    assert places is not None
    assert places.database_url == config.database_url
    assert places.pipelines_dir == config.pipelines_dir
    assert places.schedules_file == config.schedules_file


def test_the_pipelines_a_tab_offers_are_those_pipesched_finds(tmp_path: Path):
    from scheduler.definitions.discovery import declared_name, pipeline_files

    project = make_project(tmp_path / "project")
    shutil.rmtree(project.root / "pipelines")
    shutil.copytree(shipped("pipelines"), project.root / "pipelines")
    project.pipeline("folder-name", "name: declared-name\nsteps: {}\n")
    found = sorted({declared_name(f) for f in pipeline_files(project.root / "pipelines")})
    assert "declared-name" in found
    assert complete(project, "pipesched publish ") == found


def test_runs_and_steps_complete_alike_on_each_backend(tmp_path: Path, database_url: str):
    """SQLite is read with sqlite3; PostgreSQL through the Store: the same candidates."""
    project = make_project(tmp_path / "project", database_url=database_url)
    with Store.open(database_url, clock=TickClock()) as opened:
        older, newer = add_run(opened, "training"), add_run(opened, "scoring")
    assert complete(project, "pipesched show ") == [newer, older]
    assert complete(project, f"pipesched show {older[:11]}") == [older]
    assert complete(project, "pipesched logs latest --step ") == ["prep", "train"]
