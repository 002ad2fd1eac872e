"""parallel_run with many mini-batches on local processes: workers forked from the driver (or
started on another interpreter), chunks of mini-batches in flight, and each mini-batch still
failing, timing out and being retried on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.core.procinfo import is_alive
from scheduler.executor.parallel.spec import list_input
from tests.projects import Project, make_project
from tests.test_executor import execute, steps_of
from tests.test_executor_parallel_run import (
    make_inbox,
    output_rows,
    parallel_pipeline,
    step_log,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


# Enough one-file mini-batches that each worker is sent several at once.
MANY = 60

WHERE = """
import os, sys
def init():
    open(os.path.join(sys.argv[1], f"init-{os.getpid()}"), "x").close()
def run(mini_batch):
    return [f"{os.path.basename(f)} {os.getpid()} {os.getppid()} {sys.executable} {os.getcwd()}"
            for f in mini_batch]
"""


def test_workers_on_the_drivers_interpreter_are_its_children(project: Project, tmp_path: Path):
    make_inbox(project, MANY)
    marks = tmp_path / "marks"
    marks.mkdir()
    parallel_pipeline(project, WHERE, mini_batch_size=1, arguments=[str(marks)])
    detail = execute(project, "par")
    assert steps_of(detail)["score"]["status"] == "completed", step_log(detail)
    rows = [row.split() for row in output_rows(detail)]
    assert [r[0] for r in rows] == [f"f{i:03d}.txt" for i in range(MANY)]
    step_pid = detail.attempts[-1].pid
    assert {int(r[2]) for r in rows} == {step_pid}
    assert {r[3] for r in rows} == {sys.executable}
    assert {r[4] for r in rows} == {detail.attempts[-1].workdir}
    inits = sorted(int(p.name.removeprefix("init-")) for p in marks.iterdir())
    assert sorted({int(r[1]) for r in rows}) == inits
    assert len(inits) == 2


def test_workers_run_on_the_interpreter_the_step_names(project: Project, tmp_path: Path):
    other = tmp_path / "bin" / "python3"
    other.parent.mkdir()
    other.symlink_to(sys.executable)
    make_inbox(project, MANY)
    marks = tmp_path / "marks"
    marks.mkdir()
    parallel_pipeline(
        project,
        WHERE,
        mini_batch_size=1,
        arguments=[str(marks)],
        environment={"python": str(other)},
    )
    detail = execute(project, "par")
    assert steps_of(detail)["score"]["status"] == "completed", step_log(detail)
    rows = [row.split() for row in output_rows(detail)]
    assert [r[0] for r in rows] == [f"f{i:03d}.txt" for i in range(MANY)]
    assert {r[3] for r in rows} == {str(other)}
    assert {r[4] for r in rows} == {detail.attempts[-1].workdir}
    assert len(list(marks.iterdir())) == 2


def failing_once(action: str) -> str:
    """An entry script whose run() of f031 does ``action`` the first time only."""
    return f"""
import os, sys, time
marks = sys.argv[1]
def init():
    open(os.path.join(marks, f"init-{{os.getpid()}}"), "x").close()
def run(mini_batch):
    once = os.path.join(marks, "once")
    if mini_batch[0].endswith("f031.txt") and not os.path.exists(once):
        open(once, "w").write(str(os.getpid()))
        {action}
    return [os.path.basename(f) for f in mini_batch]
"""


def run_failing_once(project: Project, tmp_path: Path, action: str):
    make_inbox(project, MANY)
    marks = tmp_path / "marks"
    marks.mkdir()
    parallel_pipeline(
        project,
        failing_once(action),
        mini_batch_size=1,
        process_count_per_node=1,
        run_invocation_timeout="1s",
        run_max_try=2,
        error_threshold=0,
        arguments=[str(marks)],
    )
    return execute(project, "par"), marks


def test_a_hung_run_among_queued_mini_batches_fails_alone(project: Project, tmp_path: Path):
    detail, marks = run_failing_once(project, tmp_path, "time.sleep(120)")
    log = step_log(detail)
    assert steps_of(detail)["score"]["status"] == "completed", log
    assert output_rows(detail) == [f"f{i:03d}.txt" for i in range(MANY)]
    assert log.count("run() took longer than 1s") == 1
    assert log.count("failed on try") == 1
    assert "mini-batch 32/60 (f031.txt) failed on try 1/2" in log
    assert not is_alive(int((marks / "once").read_text()), None)
    assert len(list(marks.glob("init-*"))) == 2  # the replacement ran init() again


def test_a_worker_dying_among_queued_mini_batches_fails_only_its_own(
    project: Project, tmp_path: Path
):
    detail, marks = run_failing_once(project, tmp_path, "os._exit(3)")
    log = step_log(detail)
    assert steps_of(detail)["score"]["status"] == "completed", log
    assert output_rows(detail) == [f"f{i:03d}.txt" for i in range(MANY)]
    assert log.count("failed on try") == 1
    assert "mini-batch 32/60 (f031.txt) failed on try 1/2 (worker-1): worker-1 died " in log
    assert "(exit code 3)" in log
    assert len(list(marks.glob("init-*"))) == 2


def test_a_failing_run_among_queued_mini_batches_counts_its_own_items(
    project: Project, tmp_path: Path
):
    make_inbox(project, MANY)
    entry = """
def run(mini_batch):
    if any(f.endswith(("f010.txt", "f040.txt")) for f in mini_batch):
        raise ValueError("bad file")
    return mini_batch
"""
    parallel_pipeline(project, entry, mini_batch_size=1, error_threshold=5)
    detail = execute(project, "par")
    log = step_log(detail)
    assert steps_of(detail)["score"]["status"] == "completed", log
    assert "completed with 2 failed items" in log
    assert len(output_rows(detail)) == MANY - 2
    metrics = steps_of(detail)["score"]["metrics"]
    assert (metrics["items_total"], metrics["items_failed"]) == (MANY, 2)


def test_the_driver_imports_only_the_standard_library_and_ours() -> None:
    """The driver is the step's process: pydantic, SQLAlchemy, structlog or Dask would only slow
    every local parallel_run step's start."""
    probe = (
        "import json, sys; before = set(sys.modules); "
        "import scheduler.executor.parallel.driver; "
        "print(json.dumps(sorted({n.partition('.')[0] for n in set(sys.modules) - before})))"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", probe],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    foreign = [n for n in loaded if n not in sys.stdlib_module_names and n != "scheduler"]
    assert not foreign, f"the parallel_run driver loads {foreign}"


def test_each_run_among_queued_mini_batches_has_the_whole_timeout(project: Project):
    """Three slow mini-batches sent to the worker together take longer than
    run_invocation_timeout; none alone does, so nothing times out."""
    make_inbox(project, MANY)
    entry = """
import os, time
def run(mini_batch):
    if mini_batch[0].endswith(("f030.txt", "f031.txt", "f032.txt")):
        time.sleep(0.6)
    return [os.path.basename(f) for f in mini_batch]
"""
    parallel_pipeline(
        project, entry, mini_batch_size=1, process_count_per_node=1, run_invocation_timeout="1s"
    )
    detail = execute(project, "par")
    log = step_log(detail)
    assert steps_of(detail)["score"]["status"] == "completed", log
    assert "took longer" not in log
    assert output_rows(detail) == [f"f{i:03d}.txt" for i in range(MANY)]


def test_a_folder_input_lists_its_files_and_linked_files_in_path_order(tmp_path: Path):
    """A file-drop batch folder holds symlinks to files; a symlinked folder is not entered and a
    dangling link is no file."""
    inbox = tmp_path / "inbox"
    (inbox / "b" / "deep").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("b/deep/3.csv", "b/2.csv", "1.csv"):
        (inbox / name).write_text("x")
    (elsewhere / "kept.csv").write_text("x")
    (inbox / "a-link.csv").symlink_to(elsewhere / "kept.csv")
    (inbox / "folder-link").symlink_to(elsewhere)
    (inbox / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    names = [os.path.relpath(path, inbox) for path in list_input(str(inbox))]
    assert names == ["1.csv", "a-link.csv", "b/2.csv", "b/deep/3.csv"]


def test_metrics_logged_in_forked_workers_reach_the_step(project: Project):
    make_inbox(project, 8)
    entry = """
from scheduler.runtime import Run
def run(mini_batch):
    Run.get_context().log("seen", len(mini_batch))
    return mini_batch
"""
    parallel_pipeline(project, entry, mini_batch_size=2)
    detail = execute(project, "par")
    assert steps_of(detail)["score"]["status"] == "completed", step_log(detail)
    metrics = steps_of(detail)["score"]["metrics"]
    assert metrics["seen"] == [2, 2, 2, 2]
    assert metrics["items_total"] == 8
