"""``pipesched run`` as a user types it: real command, real steps, real SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.core.procinfo import is_alive
from tests.conftest import wait_until
from tests.projects import Project, make_project

RUN_KEYS = {
    "id",
    "pipeline",
    "version",
    "content_hash",
    "experiment",
    "status",
    "status_reason",
    "recovered",
    "trigger",
    "schedule",
    "created_at",
    "started_at",
    "finished_at",
    "nominal_time",
    "interval_start",
    "interval_end",
}
STEP_KEYS = {
    "name",
    "display_name",
    "type",
    "status",
    "status_reason",
    "attempt",
    "attempts",
    "exit_code",
    "started_at",
    "finished_at",
    "reused_from",
    "metrics",
    "outputs",
}
ATTEMPT_KEYS = {"attempt", "status", "exit_code", "started_at", "finished_at"}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.pipeline(
        "hello",
        """
        parameters:
          who: {type: str, default: world}
          times: {type: int, default: 1}
          where: {type: path, default: "inbox"}
        data:
          greeting: {}
        steps:
          greet:
            display_name: Greet Someone
            type: python_script
            script: greet.py
            arguments: ["${{parameters.who}}", "${{parameters.times}}", "${{data.greeting}}"]
            outputs: [greeting]
          read:
            type: python_script
            script: read.py
            arguments: ["${{data.greeting}}"]
        """,
        {
            "greet.py": """
                import pathlib, sys
                from scheduler.runtime import Run
                who, times, out = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
                (out / "greeting.txt").write_text(f"hello {who}\\n" * times)
                Run.get_context().log("times", times)
                print("greeted", who)
            """,
            "read.py": "import pathlib, sys; print((pathlib.Path(sys.argv[1]) / 'greeting.txt').read_text())\n",
        },
    )
    return project


def test_run_json_prints_one_document_with_designs_shape(project: Project):
    result = project.cli("run", "hello", "-p", "who=pipesched", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == RUN_KEYS | {"parameters", "steps"}
    assert doc["status"] == "completed" and doc["trigger"] == "manual"
    assert doc["version"] is None and doc["schedule"] is None and doc["recovered"] is False
    assert doc["experiment"] == "hello"
    assert doc["parameters"] == {
        "who": "pipesched",
        "times": 1,
        "where": "datastore://default/inbox",
    }
    assert [s["name"] for s in doc["steps"]] == ["greet", "read"]
    greet, _read = doc["steps"]
    assert set(greet) == STEP_KEYS and set(greet["attempts"][0]) == ATTEMPT_KEYS
    assert greet["display_name"] == "Greet Someone" and greet["metrics"] == {"times": 1}
    assert Path(greet["outputs"]["greeting"]).is_absolute()
    assert doc["created_at"].endswith("+00:00") and len(doc["created_at"]) == 32
    assert "greet" in result.stderr  # progress goes to stderr


def test_runs_json_lists_the_run(project: Project):
    run_id = json.loads(project.cli("run", "hello", "--json").stdout)["id"]
    listed = json.loads(project.cli("runs", "--json").stdout)
    assert [r["id"] for r in listed] == [run_id]
    assert set(listed[0]) == RUN_KEYS | {"metrics"}  # runs --json adds each run's metrics


def test_failed_run_exits_non_zero_and_still_prints_json(project: Project):
    folder = project.root / "pipelines" / "hello"
    (folder / "read.py").write_text("import sys; sys.exit(2)\n")
    result = project.cli("run", "hello", "--json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["status"] == "failed" and doc["steps"][1]["exit_code"] == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-p", "times=many"], "times"),
        (["-p", "nobody=1"], "nobody"),
        (["-p", "where=../../etc"], "where"),
        (["-p", "where=/etc/passwd"], "where"),
        (["-p", "novalue"], "NAME=VALUE"),
    ],
)
def test_a_refused_parameter_leaves_no_record(project: Project, args: list[str], needle: str):
    result = project.cli("run", "hello", *args, "--json")
    assert result.returncode in (1, 2)
    assert result.stdout == ""
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(project.cli("runs", "--json").stdout) == []


def test_a_symlink_out_of_the_datastore_is_refused(project: Project, tmp_path: Path):
    project.datastore.mkdir(parents=True, exist_ok=True)
    (project.datastore / "escape").symlink_to(tmp_path)
    result = project.cli("run", "hello", "-p", "where=escape/x")
    assert result.returncode == 1 and "where" in result.stderr
    assert json.loads(project.cli("runs", "--json").stdout) == []


def test_unknown_pipeline_names_the_known_ones(project: Project):
    result = project.cli("run", "helo")
    assert result.returncode == 1
    assert "hello" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_cancels_the_run_and_its_steps(project: Project, tmp_path: Path):
    pid_file = tmp_path / "step.pid"
    project.pipeline(
        "slow",
        """
        steps:
          wait:
            type: python_script
            script: wait.py
        """,
        {
            "wait.py": f"""
            import os, time
            open("{pid_file}", "w").write(str(os.getpid()))
            time.sleep(600)
        """
        },
    )
    env = {
        **os.environ,
        "PIPESCHED_CONFIG": str(project.config_path),
        "PIPESCHED_ASSERT_OFF_LOOP": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "run", "slow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=20)
    step_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    doc = json.loads(out)
    assert doc["status"] == "canceled" and doc["status_reason"] == "canceled by user"
    assert doc["steps"][0]["status"] == "canceled"
    wait_until(lambda: not is_alive(step_pid, None), timeout=5)


def test_experiment_option_is_recorded(project: Project):
    doc = json.loads(project.cli("run", "hello", "--experiment", "trial-7", "--json").stdout)
    assert doc["experiment"] == "trial-7"


def test_config_option_is_accepted_after_the_subcommand(project: Project):
    env = {k: v for k, v in os.environ.items() if k != "PIPESCHED_CONFIG"}
    env["PIPESCHED_ASSERT_OFF_LOOP"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "run", "hello", "-c", str(project.config_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
