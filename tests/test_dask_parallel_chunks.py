"""parallel_run on a Dask cluster with enough mini-batches that each task carries several: rows
still come back in input order, and a hung run() still times out (and is retried) on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_compute_dask
from tests.test_compute_dask import (
    Cluster,
    dask_project,
    log_of,
    parallel_on_dask,
    rows_of,
)
from tests.test_executor import execute

pytest.importorskip("distributed")

cluster = test_compute_dask.cluster  # the module's own cluster of two workers

MANY = 200  # one-file mini-batches: a task on the one worker carries several

ENTRY = """
import os, sys, time
marks = sys.argv[1]
def init():
    open(os.path.join(marks, f"init-{os.getpid()}"), "x").close()
def run(mini_batch):
    hung = os.path.join(marks, "hung")
    if mini_batch[0].endswith("f101.txt") and not os.path.exists(hung):
        open(hung, "w").close()
        time.sleep(120)
    return [f"{os.path.basename(f)} {os.getpid()}" for f in mini_batch]
"""


def test_a_hung_run_inside_a_task_times_out_alone(cluster: Cluster, tmp_path: Path):
    project = dask_project(tmp_path / "p", cluster)
    marks = tmp_path / "marks"
    marks.mkdir()
    parallel_on_dask(
        project,
        marks,
        mini_batch_size=1,
        node_count=1,
        run_invocation_timeout="2s",
        run_max_try=2,
    )
    (project.root / "pipelines" / "par" / "entry.py").write_text(ENTRY)
    inbox = project.datastore / "inbox"
    for i in range(len(list(inbox.iterdir())), MANY):
        (inbox / f"f{i:03d}.txt").write_text(str(i))
    detail = execute(project, "par")
    log = log_of(detail, "score")
    assert detail.run.status == "completed", log
    assert [row.split()[0] for row in rows_of(detail)] == [f"f{i:03d}.txt" for i in range(MANY)]
    assert log.count("run() took longer than 2s") == 1
    assert log.count("failed on try") == 1
    assert f"mini-batch 102/{MANY} (f101.txt) failed on try 1/2" in log
    assert len(list(marks.glob("init-*"))) == 2  # the new worker process ran init() again


SLOW = """
import os, time
def run(mini_batch):
    if mini_batch[0].endswith(("f010.txt", "f011.txt")):
        time.sleep(0.8)
    return [os.path.basename(f) for f in mini_batch]
"""


def test_each_run_in_a_task_has_the_whole_timeout(cluster: Cluster, tmp_path: Path):
    """Two slow mini-batches in one task take longer together than run_invocation_timeout;
    neither alone does, so nothing times out."""
    project = dask_project(tmp_path / "p", cluster)
    marks = tmp_path / "marks"
    marks.mkdir()
    parallel_on_dask(project, marks, mini_batch_size=1, node_count=1, run_invocation_timeout="1.5s")
    (project.root / "pipelines" / "par" / "entry.py").write_text(SLOW)
    inbox = project.datastore / "inbox"
    for i in range(len(list(inbox.iterdir())), 64):  # 64 mini-batches: two per task
        (inbox / f"f{i:03d}.txt").write_text(str(i))
    detail = execute(project, "par")
    log = log_of(detail, "score")
    assert detail.run.status == "completed", log
    assert "took longer" not in log
    assert rows_of(detail) == [f"f{i:03d}.txt" for i in range(64)]
