"""A second ``pipesched run`` of an unchanged pipeline runs its compiled plan: it loads no
pydantic model, no SQLAlchemy and no structlog, and keeps every promise of the first — the same
records for ``show``, reuse by the same fingerprints, metrics, retries, timeouts, Ctrl-C — and a
changed pipeline, config or script is never run from a stale plan. Real commands, real step
processes, real SQLite."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from scheduler.cli import plain_run_request
from scheduler.core.procinfo import is_alive
from scheduler.daemon.recovery import OWNER_EXITED
from scheduler.definitions import compiled, config
from scheduler.store import engine, lean_writes, migrate, sqlite_reads
from tests.conftest import wait_until
from tests.model_projects import model_project
from tests.projects import Project, make_project

# Run as the command runs, and report at exit which heavy packages the process loaded.
LOADED_AT_EXIT = """
import atexit, sys
def report():
    heavy = [m for m in ("sqlalchemy", "structlog", "rich") if m in sys.modules]
    sys.stderr.write("HEAVY=" + ",".join(heavy) + "\\n")
atexit.register(report)
from scheduler.cli import main
sys.exit(main())
"""

TRAIN = """
import json, sys
from scheduler.runtime import Run
run = Run.get_context()
run.log("accuracy", 0.9)
run.log_list("losses", [0.5, 0.25])
json.dump({"slope": 2}, open(sys.argv[1], "w"))
print("trained")
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Pipeline ``ml``: ``prepare`` writes data, ``train`` reads it and logs metrics."""
    project = make_project(tmp_path / "project")
    project.pipeline(
        "ml",
        """
        parameters:
          rows: {type: int, default: 3}
        data:
          prepared: {}
          model: {}
        steps:
          prepare:
            type: python_script
            script: prepare.py
            arguments: ["${{data.prepared}}/d.txt", "${{parameters.rows}}"]
            outputs: [prepared]
          train:
            type: python_script
            script: train.py
            arguments: ["${{data.model}}/m.json"]
            inputs: [prepared]
            outputs: [model]
            allow_reuse: false
        """,
        {
            "prepare.py": """
                import sys
                open(sys.argv[1], "w").write("x\\n" * int(sys.argv[2]))
            """,
            "train.py": TRAIN,
        },
    )
    return project


def run(project: Project, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pipesched run`` with its own cache folder, reporting the heavy packages it loaded."""
    env = {
        **os.environ,
        "PIPESCHED_CONFIG": str(project.config_path),
        "PIPESCHED_ASSERT_OFF_LOOP": "1",
        "NO_COLOR": "1",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-c", LOADED_AT_EXIT, "run", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=project.root,
        timeout=120,
    )


def heavy(result: subprocess.CompletedProcess[str]) -> list[str]:
    line = [x for x in result.stderr.splitlines() if x.startswith("HEAVY=")][-1]
    return [name for name in line.removeprefix("HEAVY=").split(",") if name]


def comparable(doc: dict) -> dict:
    """A ``run --json`` document without what differs between two runs of one pipeline."""
    run_id = doc["id"]
    text = json.dumps(doc).replace(run_id, "RUN")
    clean = json.loads(text)
    for key in ("id", "created_at", "started_at", "finished_at", "nominal_time", "models"):
        clean.pop(key, None)
    for step in clean["steps"]:
        for key in ("started_at", "finished_at"):
            step.pop(key)
        for attempt in step["attempts"]:
            attempt.pop("started_at")
            attempt.pop("finished_at")
    return clean


def test_second_run_is_compiled_and_records_what_the_first_did(project: Project, tmp_path: Path):
    first = run(project, tmp_path, "ml", "--json")
    assert first.returncode == 0, first.stderr
    assert "sqlalchemy" in heavy(first)  # no plan yet: the full path, which compiles one

    second = run(project, tmp_path, "ml", "--json")
    assert second.returncode == 0, second.stderr
    assert heavy(second) == []

    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert two["status"] == "completed" and two["trigger"] == "manual"
    assert two["parameters"] == {"rows": 3}
    # prepare is reused from the first run: the same fingerprint on both paths.
    assert [s["status"] for s in two["steps"]] == ["reused", "completed"]
    assert two["steps"][0]["reused_from"] == one["id"]
    assert two["steps"][1]["metrics"] == {"accuracy": 0.9, "losses": [0.5, 0.25]}
    model = Path(two["steps"][1]["outputs"]["model"]) / "m.json"
    assert json.loads(model.read_text()) == {"slope": 2}

    # Run again with nothing to reuse: the same document as the full path's, ids and times aside.
    third = run(project, tmp_path, "ml", "--json", "--regenerate-outputs")
    assert third.returncode == 0, third.stderr
    assert heavy(third) == []
    assert comparable(json.loads(third.stdout)) == comparable(one)

    # `show` reads the compiled run's records like any other; its log is there too.
    three = json.loads(third.stdout)
    shown = project.cli("show", three["id"], "--json")
    assert comparable(json.loads(shown.stdout)) == comparable(three)
    logs = project.cli("logs", three["id"], "--step", "train")
    assert logs.returncode == 0 and "trained" in logs.stdout


def test_text_summary_of_a_compiled_run(project: Project, tmp_path: Path):
    assert run(project, tmp_path, "ml").returncode == 0
    result = run(project, tmp_path, "ml")
    assert result.returncode == 0, result.stderr
    assert heavy(result) == []
    assert "Status      completed" in result.stdout
    assert "train" in result.stdout and "accuracy" in result.stdout
    assert "  train                completed" in result.stderr


def test_a_changed_pipeline_or_script_is_never_run_from_a_stale_plan(
    project: Project, tmp_path: Path
):
    assert run(project, tmp_path, "ml").returncode == 0
    folder = project.root / "pipelines" / "ml"
    definition = folder / "pipeline.yaml"
    definition.write_text(definition.read_text().replace("default: 3", "default: 5"))
    changed = run(project, tmp_path, "ml", "--json")
    assert changed.returncode == 0, changed.stderr
    doc = json.loads(changed.stdout)
    assert doc["parameters"] == {"rows": 5}
    assert "sqlalchemy" in heavy(changed)  # loaded and compiled again

    (folder / "train.py").write_text(TRAIN.replace("0.9", "0.8"))
    edited = run(project, tmp_path, "ml", "--json")
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout)["steps"][1]["metrics"]["accuracy"] == 0.8

    project.config_path.write_text(project.config_path.read_text() + "max_log_bytes: 8192\n")
    again = run(project, tmp_path, "ml")
    assert again.returncode == 0 and "sqlalchemy" in heavy(again)


def test_models_registered_by_a_compiled_run(tmp_path: Path):
    project = model_project(tmp_path / "models")
    for _ in range(2):
        result = run(project, tmp_path, "train-and-score", "--json")
        assert result.returncode == 0, result.stderr
    third = run(project, tmp_path, "train-and-score", "--regenerate-outputs")
    assert third.returncode == 0, third.stderr
    runs = [r["id"] for r in reversed(json.loads(project.cli("runs", "--json").stdout))]
    listed = json.loads(project.cli("models", "--json").stdout)
    # The second run reused train's output: only the first and the regenerated one registered.
    assert [(m["version"], m["run_id"], m["step"]) for m in listed] == [
        (2, runs[2], "train"),
        (1, runs[0], "train"),
    ]
    log = project.cli("logs", runs[2], "--step", "score").stdout
    assert "scoring with ridge reg=0.1" in log


def test_plans_are_private(project: Project, tmp_path: Path):
    assert run(project, tmp_path, "ml").returncode == 0
    folder = tmp_path / "cache" / "pipesched" / "plans"
    plans = list(folder.iterdir())
    assert len(plans) == 1
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(plans[0].stat().st_mode) == 0o600


def test_a_pipeline_named_by_its_path(project: Project, tmp_path: Path):
    folder = str(project.root / "pipelines" / "ml")
    assert run(project, tmp_path, folder).returncode == 0
    result = run(project, tmp_path, folder, "--json")
    assert result.returncode == 0, result.stderr
    assert heavy(result) == []
    assert json.loads(result.stdout)["pipeline"] == "ml"


def test_parameters_given_take_the_full_path(project: Project, tmp_path: Path):
    assert run(project, tmp_path, "ml").returncode == 0
    result = run(project, tmp_path, "ml", "-p", "rows=2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parameters"] == {"rows": 2}


def test_failure_retries_and_timeout_on_the_compiled_path(project: Project, tmp_path: Path):
    counter = tmp_path / "tries"
    project.pipeline(
        "flaky",
        """
        steps:
          flaky:
            type: python_script
            script: flaky.py
            retries: 1
            retry_delay: 1s
            allow_reuse: false
          hang:
            type: python_script
            script: hang.py
            depends_on: [flaky]
            timeout: 1s
            allow_reuse: false
          never:
            type: python_script
            script: hang.py
            depends_on: [hang]
        """,
        {
            "flaky.py": f"""
                import pathlib, sys
                tries = pathlib.Path("{counter}")
                tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
                sys.exit(0 if len(tries.read_text()) % 2 == 0 else 4)
            """,
            "hang.py": "import time\ntime.sleep(600)\n",
        },
    )
    assert run(project, tmp_path, "flaky").returncode == 1
    result = run(project, tmp_path, "flaky", "--json")
    assert result.returncode == 1, result.stderr
    assert heavy(result) == []
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed" and doc["status_reason"] == "step failed: hang"
    flaky, hang, never = doc["steps"]
    assert flaky["status"] == "completed"
    assert [(a["status"], a["exit_code"]) for a in flaky["attempts"]] == [
        ("failed", 4),
        ("completed", 0),
    ]
    first, second = flaky["attempts"]
    waited = datetime.fromisoformat(second["started_at"]) - datetime.fromisoformat(
        first["finished_at"]
    )
    assert waited.total_seconds() >= 1, "the retry waits its retry_delay"
    assert "next attempt in 1.0s" in result.stderr
    assert hang["status"] == "failed" and hang["status_reason"] == "timeout"
    assert never["status"] == "skipped"
    log = project.cli("logs", doc["id"], "--step", "hang").stdout
    assert "timed out after 1s" in log


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", "ml"], (None, "ml", False)),
        (["run", "ml", "--json"], (None, "ml", True)),
        (["-c", "a.yaml", "run", "--json", "ml"], ("a.yaml", "ml", True)),
        (["--config=a.yaml", "run", "ml", "-c", "b.yaml"], ("b.yaml", "ml", False)),
        (["run", "ml", "--config", "a.yaml", "--config", "b.yaml"], ("b.yaml", "ml", False)),
        (["run"], None),
        (["run", "ml", "other"], None),
        (["run", "ml", "-p", "rows=2"], None),
        (["run", "ml", "--regenerate-outputs"], None),
        (["run", "ml", "--help"], None),
        (["run", "ml", "-c"], None),
        (["run", "ml", "-cfile.yaml"], None),
        (["--url", "http://x", "run", "ml"], None),
        (["runs"], None),
        (["show", "run"], None),
    ],
)
def test_only_a_plain_run_command_line_skips_click(argv: list[str], expected):
    assert plain_run_request(argv) == expected


def test_other_run_command_lines_answer_as_click_does(project: Project, tmp_path: Path):
    assert run(project, tmp_path, "ml").returncode == 0  # a plan exists from here on
    missing = run(project, tmp_path)
    assert missing.returncode == 2 and "Missing argument 'PIPELINE'" in missing.stderr
    unknown = run(project, tmp_path, "ml", "--bogus")
    assert unknown.returncode == 2 and "No such option '--bogus'" in unknown.stderr
    no_value = run(project, tmp_path, "ml", "-c")
    assert no_value.returncode == 2 and "requires an argument" in no_value.stderr
    helped = run(project, tmp_path, "ml", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: ")
    assert "--regenerate-outputs" in helped.stdout
    unknown_pipeline = run(project, tmp_path, "nope")
    assert unknown_pipeline.returncode == 1
    assert "error: no pipeline named 'nope'" in unknown_pipeline.stderr


def test_the_commands_own_config_wins_on_the_compiled_path(project: Project, tmp_path: Path):
    elsewhere = make_project(tmp_path / "elsewhere")
    assert run(project, tmp_path, "ml").returncode == 0
    result = run(project, tmp_path, "-c", str(project.config_path), "ml", "--json")
    assert result.returncode == 0, result.stderr
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "NO_COLOR": "1"}
    argv = ["-c", str(elsewhere.config_path), "run", "ml", "--json", "-c", str(project.config_path)]
    both = subprocess.run(
        [sys.executable, "-c", LOADED_AT_EXIT, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=project.root,
        timeout=120,
    )
    assert both.returncode == 0, both.stderr
    assert heavy(both) == []
    assert json.loads(both.stdout)["pipeline"] == "ml"


def test_lean_paths_use_the_stores_sqlite_settings_schema_and_config_variable():
    assert lean_writes.SQLITE_PRAGMAS == engine.SQLITE_PRAGMAS
    assert sqlite_reads.SCHEMA_REVISION == migrate.HEAD_REVISION
    assert compiled.ENV_CONFIG == config.ENV_CONFIG


@pytest.fixture
def waiting(project: Project, tmp_path: Path) -> Iterator[Path]:
    """Pipeline ``slow``, compiled: step ``wait`` writes its pid and, once ``hold`` exists,
    waits; ``after`` follows it. Returns the pid file."""
    pid_file = tmp_path / "step.pid"
    project.pipeline(
        "slow",
        """
        steps:
          wait: {type: python_script, script: wait.py, allow_reuse: false}
          after: {type: python_script, script: wait.py, depends_on: [wait], allow_reuse: false}
        """,
        {
            "wait.py": f"""
                import os, pathlib, time
                pathlib.Path("{pid_file}").write_text(str(os.getpid()))
                if pathlib.Path("{tmp_path}/hold").exists():
                    time.sleep(600)
            """
        },
    )
    assert run(project, tmp_path, "slow").returncode == 0  # compiles the plan
    pid_file.unlink()
    (tmp_path / "hold").touch()
    yield pid_file
    if pid_file.exists() and is_alive(int(pid_file.read_text()), None):
        os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def start_run(project: Project, tmp_path: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PIPESCHED_CONFIG": str(project.config_path),
        "PIPESCHED_ASSERT_OFF_LOOP": "1",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return subprocess.Popen(
        [sys.executable, "-c", LOADED_AT_EXIT, "run", "slow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=project.root,
    )


def started_step(pid_file: Path) -> int:
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30)
    return int(pid_file.read_text())


def newest_run(project: Project) -> dict:
    return json.loads(project.cli("runs", "--json").stdout)[0]


def test_ctrl_c_cancels_a_compiled_run(project: Project, tmp_path: Path, waiting: Path):
    proc = start_run(project, tmp_path)
    step_pid = started_step(waiting)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert heavy(subprocess.CompletedProcess([], 130, out, err)) == []
    doc = json.loads(out)
    assert doc["status"] == "canceled" and doc["status_reason"] == "canceled by user"
    assert [s["status"] for s in doc["steps"]] == ["canceled", "canceled"]
    wait_until(lambda: not is_alive(step_pid, None), timeout=5)


def test_hang_up_cancels_a_compiled_run(project: Project, tmp_path: Path, waiting: Path):
    proc = start_run(project, tmp_path)
    step_pid = started_step(waiting)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert heavy(subprocess.CompletedProcess([], 130, out, err)) == []
    doc = json.loads(out)
    assert (doc["status"], doc["status_reason"]) == ("canceled", "terminal hung up")
    wait_until(lambda: not is_alive(step_pid, None), timeout=10)


def test_kill_9_of_a_compiled_run_is_closed_by_a_daemon(
    project: Project, tmp_path: Path, waiting: Path, daemons
):
    daemon = daemons(project).start()
    proc = start_run(project, tmp_path)
    step_pid = started_step(waiting)
    proc.kill()
    proc.communicate(timeout=10)
    wait_until(
        lambda: newest_run(project)["status"] != "running",
        timeout=10,
        message="the daemon closed the run of the killed foreground process",
    )
    doc = json.loads(project.cli("show", newest_run(project)["id"], "--json").stdout)
    assert (doc["status"], doc["status_reason"]) == ("failed", OWNER_EXITED)
    assert [s["status"] for s in doc["steps"]] == ["failed", "skipped"]
    wait_until(lambda: not is_alive(step_pid, None), timeout=10, message="the step was killed")
    assert daemon.stop() == 0


def test_kill_9_of_a_compiled_run_without_a_daemon_then_cancel(
    project: Project, tmp_path: Path, waiting: Path
):
    proc = start_run(project, tmp_path)
    step_pid = started_step(waiting)
    proc.kill()
    proc.communicate(timeout=10)
    listed = newest_run(project)
    assert listed["status"] == "running" and listed["owner_alive"] is False
    canceled = project.cli("cancel", listed["id"])
    assert canceled.returncode == 0, canceled.stderr
    assert newest_run(project)["status"] == "canceled"
    wait_until(lambda: not is_alive(step_pid, None), timeout=10, message="cancel killed the step")
