"""Read commands print the same thing whichever way they read: with the standard library's
sqlite3 and a config read without pydantic (the default), through the full SQLAlchemy store, or
by asking the running daemon; and the light way loads neither SQLAlchemy's ORM nor pydantic
(nor rich when the output is not a terminal). Real projects, real runs, a real daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from scheduler.core.errors import DefinitionErrors
from scheduler.definitions.config import load_config, read_config
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project, shipped

TRAIN = """
    parameters:
      accuracy: {type: float, default: 0.5}
    steps:
      train:
        type: python_script
        script: train.py
        arguments: [--accuracy, "${{parameters.accuracy}}"]
      score:
        type: python_script
        script: score.py
        allow_reuse: false
"""
TRAIN_SCRIPT = """
    import sys
    from scheduler.runtime import Run

    run = Run.get_context()
    accuracy = float(sys.argv[2])
    run.log("accuracy", accuracy)
    run.log("loss", round(1 - accuracy, 6))
    print(f"trained to {accuracy}")
"""
SCORE_SCRIPT = """
    from scheduler.runtime import Run

    Run.get_context().log("rows", 120)
    print("scored")
"""
SCHEDULES = """
    schedules:
      - name: yearly
        pipeline: train
        cron: "0 3 1 1 *"
"""
ACCURACIES = ("0.8", "0.9", "0.85")


def build_project(root: Path) -> tuple[Project, list[str]]:
    """Pipeline ``train`` (steps ``train`` and ``score``, metrics accuracy, loss and rows) run
    once per accuracy in ACCURACIES, a yearly schedule and a registered model; the run ids,
    oldest first."""
    project = make_project(root)
    project.pipeline("train", TRAIN, {"train.py": TRAIN_SCRIPT, "score.py": SCORE_SCRIPT})
    project.schedules(SCHEDULES)
    run_ids = []
    for accuracy in ACCURACIES:
        done = project.cli("run", "train", "-p", f"accuracy={accuracy}", "--json")
        assert done.returncode == 0, done.stderr
        run_ids.append(json.loads(done.stdout)["id"])
    model = root / "model.txt"
    model.write_text("weights\n")
    with project.store() as store:
        # lazy: the registry's service, only to give `models` something to list
        from scheduler.services.models import register_model

        register_model(project.config(), store, model, "reads-model", run_id=run_ids[-1])
    return project, run_ids


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, list[str]]:
    return build_project(tmp_path_factory.mktemp("fast-reads") / "p")


def read_commands(run_ids: list[str]) -> list[tuple[str, ...]]:
    """Every read, in the forms scripts use (JSON) and people read (text without times)."""
    newest = run_ids[-1]
    return [
        ("runs", "--json"),
        ("runs", "--json", "--limit", "2", "--pipeline", "train"),
        ("show", newest, "--json"),
        ("show", newest[:8], "--json"),
        ("logs", newest, "--step", "train"),
        ("logs", newest),
        ("fires", "--json"),
        ("models", "--json"),
        ("models", "show", "reads-model", "--json"),
        ("metrics", "train", "--json"),
        ("metrics", "train", "--csv", "--metric", "accuracy"),
        ("schedules", "--json"),
        ("pipelines", "--json"),
        ("pipelines",),
    ]


def outputs(project: Project, commands: list[tuple[str, ...]], **kwargs) -> dict[str, str]:
    found = {}
    for command in commands:
        done = project.cli(*command, **kwargs)
        assert done.returncode == 0, (command, done.stderr)
        found[" ".join(command)] = done.stdout
    return found


def without_ids(text: str) -> str:
    """``schedules --json`` gives a schedule's id once a daemon has registered it."""
    data = json.loads(text)
    return json.dumps([{k: v for k, v in item.items() if k != "id"} for item in data])


def test_reads_print_the_same_with_a_daemon_and_without(built) -> None:
    project, run_ids = built
    commands = read_commands(run_ids)
    daemon = DaemonProcess(project).start()
    try:
        asked = outputs(project, commands)
    finally:
        daemon.close()
    read = outputs(project, commands)
    for command in ("schedules --json",):
        assert without_ids(asked.pop(command)) == without_ids(read.pop(command))
    assert asked == read


def test_the_full_store_reads_what_sqlite3_reads(built, tmp_path: Path) -> None:
    """The same database through SQLAlchemy (a URL with options is left to it) gives the same
    output, byte for byte."""
    project, run_ids = built
    config = yaml.safe_load(project.config_path.read_text())
    config["database"] = f"{project.config().database_url}?timeout=5"
    full = project.config_path.with_name("full.yaml")
    full.write_text(yaml.safe_dump(config))
    commands = [c for c in read_commands(run_ids) if c[0] not in ("schedules", "pipelines")]
    lean = outputs(project, commands)
    assert outputs(project, commands, env={"PIPESCHED_CONFIG": str(full)}) == lean
    runs = json.loads(lean["runs --json"])
    assert [r["id"] for r in runs] == run_ids[::-1]
    assert runs[0]["metrics"] == {"train": {"accuracy": 0.85, "loss": 0.15}, "score": {"rows": 120}}


def loaded_modules(project: Project, *args: str) -> set[str]:
    """The modules a real ``pipesched ARGS`` had loaded when it ended (stdout a pipe)."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('\\n'.join(sys.modules), file=sys.stderr))\n"
        "from scheduler.cli import main\n"
        f"main({list(args)!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PIPESCHED_URL", "PIPESCHED_TOKEN")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=project.root,
        env={**env, "PIPESCHED_CONFIG": str(project.config_path)},
    )
    assert done.returncode == 0, done.stderr
    return set(done.stderr.split())


HEAVY = ("sqlalchemy", "pydantic", "rich")


def heavy_modules(project: Project, *args: str) -> set[str]:
    return {m for m in loaded_modules(project, *args) if m.startswith(HEAVY)}


def test_light_reads_load_neither_sqlalchemy_nor_pydantic_nor_rich(built) -> None:
    project, run_ids = built
    newest = run_ids[-1]
    for args in [
        ("runs",),
        ("runs", "--json"),
        ("show", newest),
        ("logs", newest),
        ("fires",),
        ("models",),
        ("metrics", "train"),
        ("next", "0 0 * * MON"),
    ]:
        assert heavy_modules(project, *args) == set(), args
    daemon = DaemonProcess(project).start()
    try:
        for args in [("schedules",), ("pipelines",), ("runs",), ("show", newest)]:
            assert heavy_modules(project, *args) == set(), args
    finally:
        daemon.close()


# -- the config, read without pydantic ---------------------------------------------------------


CONFIGS = {
    "shipped": None,  # the shipped config/pipesched.yaml
    "empty mapping": "{}\n",
    "paths": "state_dir: /srv/ps\npipelines_dir: pipes\nschedules: s.yaml\n",
    "sizes": "max_log_bytes: 64 KiB\nmin_free_space: 0\nshutdown_grace: 1m\n"
    "api: {port: 9000, max_body_bytes: 2048}\n",
    "stores": "datastores: {default: null, shared: {path: /mnt/x}}\n"
    "compute: {local: null, big: {max_workers: 2}}\nlogging: {format: JSON, level: DEBUG}\n",
    "sqlite url": "database: sqlite:////tmp/elsewhere.db\n",
    "postgres url": "database: postgresql+psycopg://u@db/pipesched\n",
    "exposed host": "api: {host: 0.0.0.0, allow_insecure_remote: true}\n",
}
BAD_CONFIGS = {
    "unknown key": "state_dri: ../var\n",
    "wrong type": "max_concurrent_runs: '8'\n",
    "no default datastore": "datastores: {other: {path: /x}}\n",
    "exposed host": "api: {host: 0.0.0.0}\n",
    "bad size": "max_log_bytes: 12 parsecs\n",
    "duplicate key": "state_dir: a\nstate_dir: b\n",
    "not a mapping": "- a\n- b\n",
    "bad url": "database: 'not a url'\n",
    "dask without address": "compute: {c: {type: dask}}\n",
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_light_config_read_gives_the_full_loaders_config(name: str, tmp_path: Path) -> None:
    path = tmp_path / "config" / "pipesched.yaml"
    path.parent.mkdir()
    text = CONFIGS[name]
    path.write_text(shipped("config", "pipesched.yaml").read_text() if text is None else text)
    assert read_config(path) == load_config(path)


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_the_light_config_read_reports_the_full_loaders_errors(name: str, tmp_path: Path) -> None:
    path = tmp_path / "pipesched.yaml"
    path.write_text(BAD_CONFIGS[name])
    with pytest.raises(DefinitionErrors) as full:
        load_config(path)
    with pytest.raises(DefinitionErrors) as light:
        read_config(path)
    assert [str(e) for e in light.value.errors] == [str(e) for e in full.value.errors]


def test_the_sqlite_reads_know_the_current_schema() -> None:
    from scheduler.store.migrate import HEAD_REVISION
    from scheduler.store.sqlite_reads import SCHEMA_REVISION

    assert SCHEMA_REVISION == HEAD_REVISION


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Project]:
    yield make_project(tmp_path)


def test_a_store_not_created_yet_is_created_by_the_first_read(fresh: Project) -> None:
    """No database file: the full store creates it at the current schema, as before."""
    done = fresh.cli("runs", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    assert (fresh.state_dir / "pipesched.db").is_file()


def test_a_broken_file_is_reported_the_same_with_a_daemon(fresh: Project) -> None:
    """The daemon cannot summarize a schedules file that no longer parses: the command then
    reads it itself, so its errors are the file:line:col lines it prints without a daemon."""
    daemon = DaemonProcess(fresh).start()
    try:
        fresh.schedules("schedules: [\n")
        asked = fresh.cli("schedules")
    finally:
        daemon.close()
    read = fresh.cli("schedules")
    assert (asked.returncode, asked.stdout, asked.stderr) == (
        read.returncode,
        read.stdout,
        read.stderr,
    )
    assert read.returncode == 1 and "schedules.yaml:" in read.stderr
