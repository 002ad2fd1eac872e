"""parallel_run throughput on 10,000 small files (items per second).

Local: a parallel_run step (2 worker processes, mini-batches of 10, run by the executor
in-process; timed from the step's process start to its exit, so worker start-up and init() are
in) against a plain ``multiprocessing.Pool`` of 2 processes doing the same work: the same entry
script's ``init()`` in each process and ``run()`` over the same mini-batches, rows written in
order to one file, pool start-up included.

Dask: the same step on a two-worker cluster (``dask scheduler`` + two ``dask worker --nworkers 1
--nthreads 1`` on 127.0.0.1) with ``node_count: 2`` against ``node_count: 1``, and against plain
Dask doing the same work (``client.map`` of every mini-batch at once, one task each, no timeouts,
retries or per-worker flow control).

The step's figures include its interpreter's start and imports; where ``PYTHONDONTWRITEBYTECODE``
is set (as in some sandboxes) that start also compiles pipesched's modules from source every time.
Trials are interleaved so machine noise hits both sides alike.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import yaml

from scheduler.executor import warmpool
from scheduler.executor.parallel.spec import list_input, mini_batches
from scheduler.executor.parallel.worker import call_init, load_entry, to_rows
from tests.projects import Project, make_project

FILES = 10_000
BATCH = 10
PROCESSES = 2
REPO = Path(__file__).resolve().parents[2]

ENTRY = """
import os
def init():
    global scale
    scale = 2
def run(mini_batch):
    rows = []
    for path in mini_batch:
        with open(path) as handle:
            values = [float(v) for v in handle.read().split(",")]
        rows.append(f"{os.path.basename(path)} {sum(v * v for v in values) * scale:.3f}")
    return rows
"""


def _figure(name: str, samples: list[float], baseline: list[float] | None, base: str | None):
    median = statistics.median(samples)
    return {
        "name": name,
        "unit": "items/s",
        "median": median,
        "min": min(samples),
        "max": max(samples),
        "ratio": median / statistics.median(baseline) if baseline else None,
        "baseline": base,
        "trials": len(samples),
    }


def _make_files(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        values = ",".join(str((i * 7 + j) % 101) for j in range(20))
        (folder / f"item-{i:05d}.csv").write_text(values + "\n")


# ---- the baseline -----------------------------------------------------------------------------

_MODULE: ModuleType | None = None


def _pool_init(entry: str) -> None:
    global _MODULE
    _MODULE = load_entry(entry, [])
    call_init(_MODULE)


def _pool_run(batch: list[str]) -> list[str]:
    assert _MODULE is not None
    return to_rows(_MODULE.run(batch))


def _pool_trial(entry: Path, inbox: Path, out: Path) -> float:
    started = time.perf_counter()
    batches = mini_batches(list_input(str(inbox)), BATCH)
    with (
        multiprocessing.get_context("fork").Pool(PROCESSES, _pool_init, (str(entry),)) as pool,
        open(out, "w") as handle,
    ):
        for rows in pool.imap(_pool_run, batches):
            handle.write("\n".join(rows) + "\n")
    return FILES / (time.perf_counter() - started)


def _dask_batch(entry: str, batch: list[str]) -> list[str]:
    """Runs on a Dask worker: the entry script loaded and init()ed once per process."""
    if _MODULE is None:
        _pool_init(entry)
    return _pool_run(batch)


def _dask_map_trial(address: str, entry: Path, inbox: Path, out: Path) -> float:
    """Dask's own ceiling: every mini-batch submitted at once with ``client.map``."""
    from distributed import Client

    started = time.perf_counter()
    batches = mini_batches(list_input(str(inbox)), BATCH)
    with Client(address, timeout=30) as client, open(out, "w") as handle:
        futures = client.map(_dask_batch, [str(entry)] * len(batches), batches, pure=False)
        for rows in client.gather(futures):
            handle.write("\n".join(rows) + "\n")
    return FILES / (time.perf_counter() - started)


# ---- pipesched ------------------------------------------------------------------------------


def _pipeline(project: Project, compute: str, node_count: int) -> None:
    step = {
        "type": "parallel_run",
        "compute": compute,
        "entry_script": "entry.py",
        "input": "${{parameters.input_path}}",
        "output": "results",
        "mini_batch_size": BATCH,
        "process_count_per_node": PROCESSES,
        "node_count": node_count,
        "allow_reuse": False,
    }
    project.pipeline(
        f"bench-{compute}-{node_count}",
        {
            "parameters": {"input_path": {"type": "path", "default": "inbox"}},
            "data": {"results": {}},
            "steps": {"score": step},
        },
        {"entry.py": ENTRY},
    )


def _step_trial(project: Project, name: str) -> tuple[float, float]:
    """Items/s of the whole step process, and as the driver counts them (its metric: from the
    driver's start, so without interpreter start-up)."""
    from scheduler.dispatch.submit import submit_run
    from scheduler.executor import RunExecutor

    config, store = project.config(), project.store()
    pipeline = project.load(name)
    run = submit_run(config, store, pipeline, {})
    status = asyncio.run(
        RunExecutor(config=config, store=store, pipeline=pipeline, run=run).execute()
    )
    detail = store.get_run_detail(run.id)
    store.close()
    attempt = detail.attempts[0]
    if status != "completed":
        raise RuntimeError(f"benchmark run {run.id} ended {status}: see {attempt.log_path}")
    metric = detail.to_json()["steps"][0]["metrics"]["items_per_second"]
    return FILES / (attempt.finished_at - attempt.started_at).total_seconds(), float(metric)


@contextmanager
def _cluster(base: Path) -> Iterator[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    dask = [sys.executable, "-m", "dask"]
    file = base / "scheduler.json"
    procs = [
        subprocess.Popen(
            [
                *dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(file),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        address = None
        deadline = time.monotonic() + 60
        while address is None and time.monotonic() < deadline:
            try:
                address = json.loads(file.read_text())["address"]
            except (FileNotFoundError, ValueError, KeyError):
                time.sleep(0.1)
        assert address is not None, "the Dask scheduler did not start"
        for i in (1, 2):
            procs.append(
                subprocess.Popen(
                    [
                        *dask,
                        "worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for group in (procs[1:], procs[:1]):
            for proc in group:
                proc.terminate()
            for proc in group:
                proc.wait(timeout=30)


def main(quick: bool = False) -> list[dict]:
    trials = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = make_project(
            root / "project",
            compute={
                "local": {"type": "local", "max_workers": 4},
                "warm": {"type": "local", "max_workers": 4, "warm_imports": []},
            },
        )
        inbox = project.datastore / "inbox"
        _make_files(inbox, FILES)
        entry = root / "entry.py"
        entry.write_text(ENTRY)
        _pipeline(project, "local", 1)
        _pipeline(project, "warm", 1)
        warmpool.MIN_FOREGROUND_STEPS = 1  # one step forked from the warm target's zygote
        _step_trial(project, "bench-warm-1")  # starts the zygote before any trial is timed
        pool, local, local_inner, warm = [], [], [], []
        for _ in range(trials):
            pool.append(_pool_trial(entry, inbox, root / "pool.txt"))
            whole, inner = _step_trial(project, "bench-local-1")
            local.append(whole)
            local_inner.append(inner)
            warm.append(_step_trial(project, "bench-warm-1")[0])
        warmpool.stop_warm_pool()
        figures = [
            _figure(f"multiprocessing.Pool({PROCESSES}), {FILES} files", pool, None, None),
            _figure(
                f"parallel_run local, {PROCESSES} processes", local, pool, "multiprocessing.Pool"
            ),
            _figure("  same, driver's own count", local_inner, pool, "multiprocessing.Pool"),
            _figure("parallel_run local, warm target", warm, pool, "multiprocessing.Pool"),
        ]
        with _cluster(root) as address:
            config = yaml.safe_load(project.config_path.read_text())
            config["compute"]["cluster"] = {"type": "dask", "address": address}
            project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            _pipeline(project, "cluster", 1)
            _pipeline(project, "cluster", 2)
            one, two, plain = [], [], []
            for _ in range(trials):
                plain.append(_dask_map_trial(address, entry, inbox, root / "dask.txt"))
                one.append(_step_trial(project, "bench-cluster-1")[0])
                two.append(_step_trial(project, "bench-cluster-2")[0])
        figures += [
            _figure("dask client.map of the batches, 2 workers", plain, None, None),
            _figure("parallel_run dask, 1 worker", one, None, None),
            _figure("parallel_run dask, 2 workers", two, one, "dask 1 worker"),
            _figure("parallel_run dask, 2 workers vs map", two, plain, "dask client.map"),
            _figure("parallel_run dask, 2 workers vs Pool", two, pool, "multiprocessing.Pool"),
        ]
    return figures
