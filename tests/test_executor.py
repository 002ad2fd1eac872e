"""The embedded executor with real subprocess steps, real files and a real store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.core.procinfo import is_alive
from scheduler.dispatch.submit import submit_run
from scheduler.executor import ExecutionOptions, RunExecutor
from tests.projects import Project, make_project


def execute(project: Project, name: str, params: dict | None = None, **options):
    config, store = project.config(), project.store()
    pipeline = project.load(name)
    run = submit_run(config, store, pipeline, params or {})
    executor = RunExecutor(
        config=config,
        store=store,
        pipeline=pipeline,
        run=run,
        options=ExecutionOptions(kill_grace=options.pop("kill_grace", 0.5), **options),
    )
    asyncio.run(executor.execute())
    return store.get_run_detail(run.id)


def steps_of(detail) -> dict:
    return {s["name"]: s for s in detail.to_json()["steps"]}


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Project:
    return make_project(
        tmp_path, database_url=None if database_url.startswith("sqlite") else database_url
    )


SLEEPER = """
import sys, time
time.sleep(float(sys.argv[1]))
"""


def test_diamond_runs_parallel_steps_at_the_same_time(project: Project):
    project.pipeline(
        "diamond",
        """
        data:
          a_out: {}
          b_out: {}
          c_out: {}
        steps:
          a: {type: python_script, script: sleep.py, arguments: ["0", "${{data.a_out}}"], outputs: [a_out]}
          b: {type: python_script, script: sleep.py, arguments: ["0.6", "${{data.a_out}}", "${{data.b_out}}"], outputs: [b_out]}
          c: {type: python_script, script: sleep.py, arguments: ["0.6", "${{data.a_out}}", "${{data.c_out}}"], outputs: [c_out]}
          d: {type: python_script, script: sleep.py, arguments: ["0", "${{data.b_out}}", "${{data.c_out}}"]}
        """,
        {"sleep.py": SLEEPER},
    )
    detail = execute(project, "diamond")
    assert detail.run.status == "completed"
    steps = {s.step: s for s in detail.attempts}
    b, c = steps["b"], steps["c"]
    assert b.started_at < c.finished_at and c.started_at < b.finished_at, "b and c did not overlap"
    assert steps["a"].finished_at <= min(b.started_at, c.started_at)
    assert steps["d"].started_at >= max(b.finished_at, c.finished_at)


def test_max_workers_one_runs_parallel_branches_one_after_another(tmp_path: Path):
    project = make_project(tmp_path, max_workers=1)
    project.pipeline(
        "two",
        """
        steps:
          b: {type: python_script, script: sleep.py, arguments: ["0.3"]}
          c: {type: python_script, script: sleep.py, arguments: ["0.3"]}
        """,
        {"sleep.py": SLEEPER},
    )
    detail = execute(project, "two")
    first, second = sorted(detail.attempts, key=lambda a: a.started_at)
    assert first.finished_at <= second.started_at


FAILER = "import sys; print('about to fail'); sys.exit(3)\n"
OK = "print('ok')\n"

BRANCHES = """
continue_on_step_failure: {flag}
data:
  x: {{}}
steps:
  bad: {{type: python_script, script: fail.py, outputs: [x]}}
  after_bad: {{type: python_script, script: ok.py, inputs: [x]}}
  later: {{type: python_script, script: ok.py, depends_on: [gate]}}
  gate: {{type: python_script, script: sleep.py, arguments: ["0.5"]}}
"""


def test_failed_step_skips_dependents_and_stops_the_rest_by_default(project: Project):
    project.pipeline(
        "branches",
        BRANCHES.format(flag="false"),
        {"fail.py": FAILER, "ok.py": OK, "sleep.py": SLEEPER},
    )
    detail = execute(project, "branches")
    steps = steps_of(detail)
    assert detail.run.status == "failed"
    assert steps["bad"]["status"] == "failed" and steps["bad"]["exit_code"] == 3
    assert steps["after_bad"]["status"] == "skipped"
    assert "bad" in steps["after_bad"]["status_reason"]
    assert steps["gate"]["status"] == "completed"  # already running: allowed to finish
    assert steps["later"]["status"] == "skipped"  # independent, but never started


def test_continue_on_step_failure_runs_independent_branches(project: Project):
    project.pipeline(
        "branches",
        BRANCHES.format(flag="true"),
        {"fail.py": FAILER, "ok.py": OK, "sleep.py": SLEEPER},
    )
    detail = execute(project, "branches")
    steps = steps_of(detail)
    assert detail.run.status == "failed"
    assert steps["after_bad"]["status"] == "skipped"
    assert steps["later"]["status"] == "completed"


STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {child.pid}")
print("ready", flush=True)
time.sleep(600)
"""


def test_timeout_kills_a_step_that_ignores_sigterm_and_its_grandchildren(tmp_path: Path):
    project = make_project(tmp_path)
    pids_file = tmp_path / "pids"
    project.pipeline(
        "stubborn",
        f"""
        steps:
          hang: {{type: python_script, script: hang.py, arguments: ["{pids_file}"], timeout: 1s}}
        """,
        {"hang.py": STUBBORN},
    )
    detail = execute(project, "stubborn", kill_grace=0.3)
    step = steps_of(detail)["hang"]
    assert step["status"] == "failed" and step["status_reason"] == "timeout"
    leader, grandchild = (int(p) for p in pids_file.read_text().split())
    from tests.conftest import wait_until

    wait_until(lambda: not is_alive(leader, None) and not is_alive(grandchild, None), timeout=5)
    assert "timed out" in Path(detail.attempts[0].log_path).read_text()


def test_retries_record_every_attempt(tmp_path: Path):
    project = make_project(tmp_path)
    counter = tmp_path / "count"
    project.pipeline(
        "flaky",
        f"""
        steps:
          flaky:
            type: python_script
            script: flaky.py
            arguments: ["{counter}"]
            retries: 2
        """,
        {
            "flaky.py": """
            import sys, pathlib
            p = pathlib.Path(sys.argv[1])
            n = int(p.read_text()) + 1 if p.exists() else 1
            p.write_text(str(n))
            print(f"attempt {n}")
            sys.exit(0 if n >= 2 else 1)
        """
        },
    )
    detail = execute(project, "flaky")
    step = steps_of(detail)["flaky"]
    assert detail.run.status == "completed"
    assert step["attempt"] == 2
    assert [(a["attempt"], a["status"], a["exit_code"]) for a in step["attempts"]] == [
        (1, "failed", 1),
        (2, "completed", 0),
    ]
    logs = [Path(a.log_path).read_text() for a in detail.attempts]
    assert logs == ["attempt 1\n", "attempt 2\n"]


def test_retries_exhausted_leave_the_step_failed(tmp_path: Path):
    project = make_project(tmp_path)
    project.pipeline(
        "bad",
        "steps:\n  s: {type: python_script, script: fail.py, retries: 1}\n",
        {"fail.py": FAILER},
    )
    step = steps_of(execute(project, "bad"))["s"]
    assert step["status"] == "failed" and len(step["attempts"]) == 2


def test_metrics_logged_before_a_crash_reach_the_store(project: Project):
    project.pipeline(
        "crash",
        "steps:\n  s: {type: python_script, script: crash.py}\n",
        {
            "crash.py": """
            from scheduler.runtime import Run
            run = Run.get_context()
            run.log("accuracy", 0.93)
            run.log_list("losses", [3, 2, 1])
            run.log_row("table", epoch=1, loss=0.5)
            raise RuntimeError("boom after logging")
        """
        },
    )
    detail = execute(project, "crash")
    step = steps_of(detail)["s"]
    assert step["status"] == "failed"
    assert step["metrics"] == {
        "accuracy": 0.93,
        "losses": [3, 2, 1],
        "table": [{"epoch": 1, "loss": 0.5}],
    }
    assert "boom after logging" in Path(detail.attempts[0].log_path).read_text()


def test_data_flows_through_the_datastore_and_workdir_mirrors_the_source(tmp_path: Path):
    project = make_project(tmp_path)
    project.pipeline(
        "flow",
        """
        data:
          numbers: {}
        steps:
          produce:
            type: python_script
            script: produce.py
            arguments: [--out, "${{data.numbers}}"]
            outputs: [numbers]
          consume:
            type: python_script
            script: consume.py
            arguments: [--in, "${{data.numbers}}", --run, "${{run.id}}"]
            inputs: [numbers]
        """,
        {
            "produce.py": """
                import pathlib, sys
                out = pathlib.Path(sys.argv[2]); (out / "n.txt").write_text("42")
                pathlib.Path("outputs/report.txt").write_text(open("lookup.txt").read())
            """,
            "consume.py": """
                import pathlib, sys
                from scheduler.runtime import Run
                run = Run.get_context()
                assert run.parent_id == sys.argv[4], (run.parent_id, sys.argv)
                assert run.input_datasets["numbers"] == sys.argv[2]
                print("read", (pathlib.Path(sys.argv[2]) / "n.txt").read_text())
            """,
            "lookup.txt": "relative reads work",
        },
    )
    detail = execute(project, "flow")
    assert detail.run.status == "completed", Path(detail.attempts[-1].log_path).read_text()
    produce = steps_of(detail)["produce"]
    expected = project.datastore / ".pipesched" / "outputs" / detail.run.id / "produce" / "numbers"
    assert produce["outputs"] == {"numbers": str(expected.resolve())}
    assert (expected / "n.txt").read_text() == "42"
    workdir = Path(detail.attempts[0].workdir)
    assert (workdir / "outputs" / "report.txt").read_text() == "relative reads work"
    assert "read 42" in Path(detail.attempts[1].log_path).read_text()


def test_step_environment_drops_systemd_variables_and_adds_its_own(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/should-not-leak")
    monkeypatch.setenv("WATCHDOG_USEC", "1000")
    project = make_project(tmp_path)
    project.pipeline(
        "env",
        """
        steps:
          s:
            type: python_script
            script: env.py
            environment: {variables: {GREETING: hello}}
        """,
        {
            "env.py": """
            import os
            print(sorted(k for k in os.environ if k in ("NOTIFY_SOCKET", "WATCHDOG_USEC")))
            print(os.environ["GREETING"])
        """
        },
    )
    detail = execute(project, "env")
    assert Path(detail.attempts[0].log_path).read_text() == "[]\nhello\n"


def test_a_step_on_another_interpreter_can_import_the_runtime(tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import scheduler"], capture_output=True, cwd=tmp_path
    )
    assert probe.returncode != 0, "the bare venv must not see pipesched"
    project = make_project(tmp_path)
    project.pipeline(
        "venv",
        f"""
        steps:
          s:
            type: python_script
            script: s.py
            environment: {{python: "{venv / "bin" / "python"}"}}
        """,
        {
            "s.py": """
            import sys
            from scheduler.runtime import Run
            Run.get_context().log("prefix", sys.prefix)
        """
        },
    )
    detail = execute(project, "venv")
    step = steps_of(detail)["s"]
    assert step["status"] == "completed", Path(detail.attempts[0].log_path).read_text()
    assert step["metrics"]["prefix"] == str(venv)


def test_a_missing_interpreter_fails_the_step_with_its_name(tmp_path: Path):
    project = make_project(tmp_path)
    project.pipeline(
        "nopy",
        """
        steps:
          s: {type: python_script, script: ok.py, environment: {python: no-such-python-3.99}}
        """,
        {"ok.py": OK},
    )
    detail = execute(project, "nopy")
    step = steps_of(detail)["s"]
    assert step["status"] == "failed"
    assert "no-such-python-3.99" in step["status_reason"]


def test_a_loud_step_goes_to_its_log_file_not_to_memory(tmp_path: Path):
    project = make_project(tmp_path)
    project.pipeline(
        "loud",
        "steps:\n  s: {type: python_script, script: loud.py}\n",
        {"loud.py": "import sys\nfor _ in range(200): sys.stdout.write('x' * 65535 + '\\n')\n"},
    )
    detail = execute(project, "loud")
    assert os.path.getsize(detail.attempts[0].log_path) == 200 * 65536
