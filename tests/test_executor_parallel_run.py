"""parallel_run on local processes: real executor, real worker processes, real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler.core.procinfo import is_alive
from scheduler.executor.parallel.worker import to_rows
from tests.conftest import wait_until
from tests.projects import Project, make_project, shipped
from tests.test_executor import execute, steps_of


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


def make_inbox(project: Project, count: int, name: str = "inbox", suffix: str = ".txt") -> Path:
    inbox = project.datastore / name
    inbox.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (inbox / f"f{i:03d}{suffix}").write_text(str(i))
    return inbox


def parallel_pipeline(project: Project, entry: str, **fields: object) -> None:
    """A one-step pipeline: parallel_run of ``entry.py`` over the ``inbox`` folder."""
    step = {
        "type": "parallel_run",
        "entry_script": "entry.py",
        "input": "${{parameters.input_path}}",
        "output": "results",
        "mini_batch_size": 2,
        "process_count_per_node": 2,
        "run_invocation_timeout": "30s",
        "run_max_try": 1,
        "allow_reuse": False,
        **fields,
    }
    definition = {
        "parameters": {"input_path": {"type": "path", "default": "inbox"}},
        "data": {"results": {}},
        "steps": {"score": step},
    }
    project.pipeline("par", definition, {"entry.py": entry})


def output_rows(detail, name: str = "parallel_run_step.txt") -> list[str]:
    folder = Path(steps_of(detail)["score"]["outputs"]["results"])
    return (folder / name).read_text().splitlines()


def step_log(detail, step: str = "score") -> str:
    attempt = [a for a in detail.attempts if a.step == step][-1]
    return Path(attempt.log_path).read_text()


# ---- init, run, append_row ---------------------------------------------------------------------

COUNTING = """
import argparse, os, sys
marks = None
def init():
    global marks
    parser = argparse.ArgumentParser()
    parser.add_argument("--marks")
    marks = parser.parse_args().marks
    open(os.path.join(marks, f"init-{os.getpid()}"), "x").close()
def run(mini_batch):
    return [f"{os.path.basename(f)} {int(open(f).read()) * 2} {os.getpid()}" for f in mini_batch]
"""


def test_init_runs_once_in_each_worker_process(project: Project, tmp_path: Path):
    make_inbox(project, 30)
    marks = tmp_path / "marks"
    marks.mkdir()
    parallel_pipeline(
        project, COUNTING, process_count_per_node=3, arguments=["--marks", str(marks)]
    )
    detail = execute(project, "par")
    assert detail.run.status == "completed"
    inits = sorted(p.name.removeprefix("init-") for p in marks.iterdir())
    pids = sorted({row.split()[2] for row in output_rows(detail)})
    assert len(inits) == 3, inits  # one per worker process, 3 workers for 15 mini-batches
    assert pids == inits


def test_append_row_writes_each_result_in_input_order(project: Project, tmp_path: Path):
    make_inbox(project, 21)
    entry = """
    import os, random, time
    def run(mini_batch):
        time.sleep(random.random() / 50)  # batches finish out of order
        return [f"{os.path.basename(f)} {int(open(f).read()) ** 2}" for f in mini_batch]
    """
    parallel_pipeline(project, entry, mini_batch_size=3, process_count_per_node=3)
    detail = execute(project, "par")
    assert detail.run.status == "completed"
    assert output_rows(detail) == [f"f{i:03d}.txt {i * i}" for i in range(21)]


def test_append_row_writes_dataframe_rows_space_separated(project: Project):
    pytest.importorskip("pandas")
    make_inbox(project, 4)
    entry = """
    import os
    import pandas as pd
    def run(mini_batch):
        return pd.DataFrame({"file": [os.path.basename(f) for f in mini_batch],
                             "value": [int(open(f).read()) for f in mini_batch]})
    """
    parallel_pipeline(project, entry, append_row_file_name="scores.txt")
    detail = execute(project, "par")
    assert detail.run.status == "completed"
    assert output_rows(detail, "scores.txt") == [f"f{i:03d}.txt {i}" for i in range(4)]


def test_rows_of_lists_and_values_are_formatted_like_azure():
    assert to_rows([["a", 1, 2.5], ("b", None), "c", 7]) == ["a 1 2.5", "b None", "c", "7"]


def test_summary_only_leaves_writing_to_the_script(project: Project):
    make_inbox(project, 5)
    entry = """
    import os, sys
    out = sys.argv[sys.argv.index("--out") + 1]
    def run(mini_batch):
        for f in mini_batch:
            with open(os.path.join(out, os.path.basename(f) + ".done"), "w") as handle:
                handle.write(open(f).read())
        return []
    """
    parallel_pipeline(
        project, entry, output_action="summary_only", arguments=["--out", "${{data.results}}"]
    )
    detail = execute(project, "par")
    assert detail.run.status == "completed"
    folder = Path(steps_of(detail)["score"]["outputs"]["results"])
    assert sorted(p.name for p in folder.iterdir()) == [f"f{i:03d}.txt.done" for i in range(5)]


def test_input_glob_selects_matching_files(project: Project):
    make_inbox(project, 3, suffix=".csv")
    make_inbox(project, 2, suffix=".skip")
    entry = """
    import os
    def run(mini_batch):
        return [os.path.basename(f) for f in mini_batch]
    """
    parallel_pipeline(project, entry, input="${{parameters.input_path}}/*.csv")
    detail = execute(project, "par")
    assert detail.run.status == "completed"
    assert output_rows(detail) == ["f000.csv", "f001.csv", "f002.csv"]


# ---- failures -------------------------------------------------------------------------------

FAILING = """
import os
def run(mini_batch):
    if any("bad" in os.path.basename(f) for f in mini_batch):
        raise ValueError("cannot score " + ",".join(mini_batch))
    return [os.path.basename(f) for f in mini_batch]
"""


def bad_inbox(project: Project, good: int = 4, bad: int = 2) -> None:
    inbox = make_inbox(project, good)
    for i in range(bad):
        (inbox / f"bad{i}.txt").write_text("x")


def test_failures_over_error_threshold_fail_the_step(project: Project):
    bad_inbox(project, bad=2)
    parallel_pipeline(project, FAILING, mini_batch_size=1, error_threshold=1)
    detail = execute(project, "par")
    assert steps_of(detail)["score"]["status"] == "failed"
    log = step_log(detail)
    assert "ValueError: cannot score" in log
    assert "more than error_threshold 1" in log


def test_failures_within_error_threshold_complete_the_step(project: Project):
    bad_inbox(project, bad=2)
    parallel_pipeline(project, FAILING, mini_batch_size=1, error_threshold=2)
    detail = execute(project, "par")
    step = steps_of(detail)["score"]
    assert step["status"] == "completed"
    assert step["metrics"]["items_failed"] == 2
    assert step["metrics"]["mini_batches_failed"] == 2
    assert output_rows(detail) == [f"f{i:03d}.txt" for i in range(4)]


def test_fewer_results_than_items_count_as_failed_items(project: Project):
    make_inbox(project, 6)
    entry = """
    def run(mini_batch):
        return mini_batch[1:]
    """
    parallel_pipeline(project, entry, mini_batch_size=3, error_threshold=-1)
    detail = execute(project, "par")
    step = steps_of(detail)["score"]
    assert step["status"] == "completed"
    assert step["metrics"]["items_failed"] == 2


FLAKY = """
import os, sys
marks = sys.argv[1]
def run(mini_batch):
    mark = os.path.join(marks, os.path.basename(mini_batch[0]))
    if not os.path.exists(mark):  # every mini-batch fails on its first try
        open(mark, "w").close()
        raise RuntimeError("first try fails")
    return mini_batch
"""


@pytest.mark.parametrize(("run_max_try", "status"), [(2, "completed"), (1, "failed")])
def test_run_max_try_retries_failed_mini_batches(
    project: Project, tmp_path: Path, run_max_try: int, status: str
):
    make_inbox(project, 4)
    marks = tmp_path / "marks"
    marks.mkdir()
    parallel_pipeline(
        project, FLAKY, error_threshold=0, run_max_try=run_max_try, arguments=[str(marks)]
    )
    detail = execute(project, "par")
    assert steps_of(detail)["score"]["status"] == status
    assert f"failed on try 1/{run_max_try}" in step_log(detail)


def test_run_invocation_timeout_kills_a_hung_run_and_retries(project: Project, tmp_path: Path):
    make_inbox(project, 4)
    marks = tmp_path / "marks"
    marks.mkdir()
    entry = """
    import os, sys, time
    marks = sys.argv[1]
    def init():
        open(os.path.join(marks, f"init-{os.getpid()}"), "x").close()
    def run(mini_batch):
        hang = os.path.join(marks, "hung")
        if mini_batch[0].endswith("f002.txt") and not os.path.exists(hang):
            open(hang, "w").write(str(os.getpid()))
            time.sleep(120)
        return mini_batch
    """
    parallel_pipeline(
        project,
        entry,
        run_invocation_timeout="1s",
        run_max_try=2,
        error_threshold=0,
        process_count_per_node=1,
        arguments=[str(marks)],
    )
    detail = execute(project, "par")
    assert steps_of(detail)["score"]["status"] == "completed"
    assert "run() took longer than 1s" in step_log(detail)
    hung = int((marks / "hung").read_text())
    assert not is_alive(hung, None)
    assert len(list(marks.glob("init-*"))) == 2  # the replacement worker ran init() again
    assert len(output_rows(detail)) == 4


def test_init_failure_fails_the_step_with_its_error(project: Project):
    make_inbox(project, 4)
    entry = """
    def init():
        raise RuntimeError("no model file")
    def run(mini_batch):
        return mini_batch
    """
    parallel_pipeline(project, entry)
    detail = execute(project, "par")
    assert steps_of(detail)["score"]["status"] == "failed"
    assert "init() failed in worker-" in step_log(detail)
    assert "RuntimeError: no model file" in step_log(detail)


def test_workers_die_with_a_timed_out_step(project: Project, tmp_path: Path):
    make_inbox(project, 4)
    marks = tmp_path / "marks"
    marks.mkdir()
    entry = """
    import os, sys, time
    def init():
        open(os.path.join(sys.argv[1], f"worker-{os.getpid()}"), "x").close()
    def run(mini_batch):
        time.sleep(120)
    """
    parallel_pipeline(project, entry, arguments=[str(marks)], timeout="2s")
    detail = execute(project, "par")
    step = steps_of(detail)["score"]
    assert (step["status"], step["status_reason"]) == ("failed", "timeout")
    pids = [int(p.name.removeprefix("worker-")) for p in marks.iterdir()]
    assert len(pids) == 2
    wait_until(lambda: not any(is_alive(pid, None) for pid in pids), timeout=5)


def test_progress_goes_to_the_step_log_and_worker_logs_are_kept(project: Project):
    make_inbox(project, 6)
    entry = """
    def init():
        print("loading the model")
    def run(mini_batch):
        return mini_batch
    """
    parallel_pipeline(project, entry)
    detail = execute(project, "par")
    step = steps_of(detail)["score"]
    log = step_log(detail)
    assert "3/3 mini-batches done, 0 failed, 0 items failed" in log
    assert step["metrics"]["mini_batches_total"] == 3
    assert step["metrics"]["mini_batches_done"] == 3
    logs = [line.rsplit(" ", 1)[1] for line in log.splitlines() if "its log: " in line]
    assert len(logs) == 2
    assert all("loading the model" in Path(p).read_text() for p in logs)


def test_missing_input_fails_with_a_clear_line(project: Project):
    parallel_pipeline(project, "def run(b):\n    return b\n")
    detail = execute(project, "par")
    assert steps_of(detail)["score"]["status"] == "failed"
    assert "does not exist" in step_log(detail)


# ---- the example ----------------------------------------------------------------------------


def test_batch_scoring_example_scores_generated_files(tmp_path: Path):
    pytest.importorskip("sklearn")
    project = make_project(tmp_path)
    (tmp_path / "pipelines").rmdir()
    (tmp_path / "pipelines").symlink_to(shipped("pipelines"))
    detail = execute(project, "batch-scoring", {"sample_files": 4})  # one mini-batch
    steps = steps_of(detail)
    assert detail.run.status == "completed", {s: v["status_reason"] for s, v in steps.items()}
    scores = Path(steps["score"]["outputs"]["scores"]) / "predictions.txt"
    rows = scores.read_text().splitlines()
    assert len(rows) == 4 * 20
    assert steps["summarize"]["metrics"]["scored_rows"] == len(rows)
    assert os.path.basename(rows[0].split()[0]).endswith(".csv")
