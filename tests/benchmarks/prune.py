"""Prune scale: a store of 10^6 finished runs (quick: 10^5), each with a step attempt, a
metric and a fire record, all past ``retention.runs``, pruned by ``services.retention.prune``
while another thread keeps writing to the store (one small write transaction every 20 ms,
as a daemon recording runs would).

Figures: the whole prune (s); each delete transaction (ms: how long one page of runs holds
the store); the wait of the concurrent writer (ms: what a daemon feels during a prune), whose
baseline is the same writer before the prune began. SQLite, and PostgreSQL when
``PIPESCHED_TEST_DATABASE_URL`` names a server (a scratch database, dropped afterwards).

Runs are filled with bulk Core inserts (chunks of 20,000): a million ``create_run`` calls would
take an hour and measure nothing of the prune. They have no folders: the prune's folder work
is an ``lstat`` of each run's few folder paths.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.projects import make_project

CHUNK = 20_000
PIPELINES = ("train", "prepare", "score", "report")
WRITE_EVERY = 0.02


def fill(store, count: int, newest: datetime) -> None:
    """``count`` finished runs ending at ``newest``, ten seconds apart, with one step attempt,
    one metric and one settled fire record each."""
    from sqlalchemy import insert

    from scheduler.core.ids import new_run_id
    from scheduler.store.models import FireRow, MetricRow, RunRow, StepRunRow

    start = newest - timedelta(seconds=count * 10)
    with store.engine.begin() as conn:
        for first in range(0, count, CHUNK):
            runs, steps, metrics, fires = [], [], [], []
            for i in range(first, min(count, first + CHUNK)):
                created = start + timedelta(seconds=i * 10)
                pipeline = PIPELINES[i % len(PIPELINES)]
                run_id = new_run_id(created)
                runs.append(
                    {
                        "id": run_id, "pipeline": pipeline, "version": None,
                        "pipeline_version_id": None, "content_hash": "bench",
                        "experiment": pipeline, "status": "completed", "status_reason": None,
                        "recovered": False, "trigger": "schedule:nightly",
                        "trigger_kind": "schedule", "schedule": "nightly",
                        "parameters": {}, "owner_host": None, "owner_pid": None,
                        "owner_start_ticks": None, "created_at": created,
                        "started_at": created, "finished_at": created + timedelta(seconds=3),
                    }
                )  # fmt: skip
                steps.append(
                    {
                        "run_id": run_id, "step": "train", "attempt": 1, "display_name": "train",
                        "type": "command", "status": "completed", "outputs": {},
                        "started_at": created, "finished_at": created,
                    }
                )  # fmt: skip
                metrics.append(
                    {
                        "run_id": run_id, "step": "train", "attempt": 1, "name": "loss",
                        "kind": "scalar", "value": 0.5, "logged_at": created,
                    }
                )  # fmt: skip
                fires.append(
                    {
                        "schedule": "nightly", "nominal_time": created, "outcome": "started",
                        "run_id": run_id, "created_at": created, "updated_at": created,
                    }
                )  # fmt: skip
            conn.execute(insert(RunRow), runs)
            conn.execute(insert(StepRunRow), steps)
            conn.execute(insert(MetricRow), metrics)
            conn.execute(insert(FireRow), fires)


def _writer(url: str, stop: threading.Event, waits: list[float]) -> None:
    """A write transaction every WRITE_EVERY seconds; how long each took, in ms."""
    from scheduler.store import Store

    with Store.open(url) as store:
        while not stop.is_set():
            began = time.perf_counter()
            store.probe_write()
            waits.append((time.perf_counter() - began) * 1000)
            stop.wait(WRITE_EVERY)


def _measure(backend: str, url: str | None, count: int, root: Path) -> list[dict]:
    from scheduler.core.clock import SYSTEM_CLOCK
    from scheduler.services.retention import prune
    from scheduler.store import Store

    project = make_project(
        root / backend, database_url=url, retention={"runs": "30d", "keep_last": 20}
    )
    config = project.config()
    with Store.open(config.database_url) as store:
        began = time.perf_counter()
        fill(store, count, datetime.now(UTC) - timedelta(days=31))
        print(f"prune[{backend}]: {count} runs filled in {time.perf_counter() - began:.0f} s",
              file=sys.stderr)  # fmt: skip
        transactions: list[float] = []
        delete_runs = store.delete_runs

        def timed_delete(*args, **kwargs):
            began = time.perf_counter()
            try:
                return delete_runs(*args, **kwargs)
            finally:
                transactions.append((time.perf_counter() - began) * 1000)

        store.__dict__["delete_runs"] = timed_delete  # the facade keeps bound methods there

        before: list[float] = []
        stop = threading.Event()
        writer = threading.Thread(target=_writer, args=(config.database_url, stop, before))
        writer.start()
        time.sleep(2.0)  # the writer's baseline, with nothing else writing
        stop.set()
        writer.join()

        during: list[float] = []
        stop = threading.Event()
        writer = threading.Thread(target=_writer, args=(config.database_url, stop, during))
        writer.start()
        report = prune(config, store, SYSTEM_CLOCK)
        stop.set()
        writer.join()
        left = store.run_count()
    print(
        f"prune[{backend}]: deleted {report.runs} runs ({left} left) in {report.seconds:.1f} s, "
        f"{report.transactions} transactions, longest "
        f"{report.longest_transaction_seconds * 1000:.1f} ms",
        file=sys.stderr,
    )
    size = f"10^{len(str(count)) - 1}"
    return [
        figure(f"prune[{backend}]: {size} runs, whole prune", [report.seconds], unit="s"),
        figure(f"prune[{backend}]: one delete transaction", transactions),
        figure(
            f"prune[{backend}]: a concurrent write",
            during,
            baseline=sorted(before)[len(before) // 2],
            baseline_name="the same write, no prune",
        ),
    ]


def main(quick: bool = False) -> list[dict]:
    count = 100_000 if quick else 1_000_000
    figures: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="pipesched-prune-") as tmp:
        figures += _measure("sqlite", None, count, Path(tmp))
        server = os.environ.get("PIPESCHED_TEST_DATABASE_URL")
        if not server:
            print("prune: PostgreSQL skipped (PIPESCHED_TEST_DATABASE_URL unset)", file=sys.stderr)
            return figures
        from sqlalchemy import create_engine, make_url, text

        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        name = f"pipesched_bench_prune_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(server).set(database=name).render_as_string(hide_password=False)
            figures += _measure("postgresql", url, count, Path(tmp))
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return figures
