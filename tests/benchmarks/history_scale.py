"""History scale: run history of 10^4, 10^5, 10^6 runs (quick: 10^4, 10^5) in SQLite, and in
PostgreSQL when ``PIPESCHED_TEST_DATABASE_URL`` names a server (a scratch database per size,
dropped afterwards). Median latency of the newest 50 runs of one pipeline through
``pipesched runs --pipeline P --limit 50 --json`` (cold subprocess), ``store.list_runs`` in
process, and ``GET /api/v1/runs?pipeline=P&limit=50`` against a real daemon's TCP API. The
baseline of each figure is the same query at the smallest size: the ratio is how it grows.

Runs are filled with bulk Core inserts (one transaction, chunks of 20,000): a million runs
through ``create_run`` would take an hour and measure nothing of the reads.
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from tests.benchmarks.figures import figure
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

PIPELINES = ("train", "prepare", "score", "report")  # P = "train": a quarter of the history
CHUNK = 20_000
STATUSES = ("completed", "completed", "completed", "failed", "canceled")


def fill_runs(store, count: int) -> None:
    """``count`` finished runs, oldest first, spread over PIPELINES, in one transaction."""
    from sqlalchemy import insert

    from scheduler.core.ids import new_run_id
    from scheduler.store.models import RunRow

    start = datetime.now(UTC) - timedelta(seconds=count * 10)
    with store.engine.begin() as conn:
        for first in range(0, count, CHUNK):
            rows = []
            for i in range(first, min(count, first + CHUNK)):
                created = start + timedelta(seconds=i * 10)
                pipeline = PIPELINES[i % len(PIPELINES)]
                rows.append(
                    {
                        "id": new_run_id(created), "pipeline": pipeline, "version": None,
                        "pipeline_version_id": None, "content_hash": "bench",
                        "experiment": pipeline, "status": STATUSES[i % len(STATUSES)],
                        "status_reason": None, "recovered": False, "trigger": "schedule",
                        "schedule": None, "parameters": {"i": i}, "owner_host": None,
                        "owner_pid": None, "owner_start_ticks": None, "created_at": created,
                        "started_at": created, "finished_at": created + timedelta(seconds=3),
                    }
                )  # fmt: skip
            conn.execute(insert(RunRow), rows)


@contextmanager
def _databases():
    """Yield [(backend, size -> database URL)]; None means SQLite inside the project."""
    sqlite = ("sqlite", lambda size: None)
    server = os.environ.get("PIPESCHED_TEST_DATABASE_URL")
    if not server:
        print("history_scale: PostgreSQL skipped (PIPESCHED_TEST_DATABASE_URL unset)",
              file=sys.stderr)  # fmt: skip
        yield [sqlite]
        return
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def scratch(size: int) -> str:
        name = f"pipesched_bench_{size}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(server).set(database=name).render_as_string(hide_password=False)

    try:
        yield [sqlite, ("pg", scratch)]
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _timed_ms(action, trials: int) -> list[float]:
    samples = []
    for _ in range(trials):
        began = time.perf_counter()
        action()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def _measure(project: Project, trials: dict[str, int]) -> dict[str, list[float]]:
    """The three latencies on one filled project."""
    store = project.store()
    try:
        store.list_runs(pipeline="train", limit=50)  # warm the page cache
        inproc = _timed_ms(lambda: store.list_runs(pipeline="train", limit=50), trials["fast"])
        assert len(store.list_runs(pipeline="train", limit=50)) == 50
    finally:
        store.close()
    command = ["pipesched", "-c", str(project.config_path), "runs", "--pipeline", "train",
               "--limit", "50", "--json"]  # fmt: skip
    cli = _timed_ms(lambda: subprocess.run(command, check=True, capture_output=True),
                    trials["cold"])  # fmt: skip
    version = ["pipesched", "--version"]
    floor = _timed_ms(lambda: subprocess.run(version, check=True, capture_output=True),
                      trials["cold"])  # fmt: skip
    made = project.cli("token", "create", f"bench-{uuid.uuid4().hex[:6]}")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    daemon = DaemonProcess(project).start(timeout=120)
    try:
        url = urlsplit(daemon.events("api_listening")[0]["url"])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"}

        def get() -> None:
            conn.request("GET", "/api/v1/runs?pipeline=train&limit=50", headers=headers)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, body

        get()  # open the keep-alive connection
        api = _timed_ms(get, trials["fast"])
        conn.close()
    finally:
        daemon.stop()
        daemon.close()
    return {"floor": floor, "cli": cli, "inproc": inproc, "api": api}


LABELS = {
    "floor": "CLI floor: pipesched --version",
    "cli": "CLI runs --pipeline P --limit 50",
    "inproc": "store.list_runs(P, limit=50)",
    "api": "GET /runs?pipeline=P&limit=50",
}


def main(quick: bool = False) -> list[dict]:
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    trials = {"cold": 3, "fast": 30} if quick else {"cold": 7, "fast": 200}
    figures = []
    with tempfile.TemporaryDirectory() as tmp, _databases() as backends:
        for backend, database in backends:
            figures.extend(_backend(Path(tmp) / backend, backend, database, sizes, trials))
    return figures


def _backend(root: Path, backend: str, database, sizes, trials) -> list[dict]:
    results = {}
    for size in sizes:
        project = make_project(root / str(size), database_url=database(size))
        with project.store() as store:
            began = time.perf_counter()
            fill_runs(store, size)
            print(f"{backend}: filled {size} runs in {time.perf_counter() - began:.1f}s",
                  file=sys.stderr)  # fmt: skip
        results[size] = _measure(project, trials)
    smallest = sizes[0]
    figures = []
    for key, label in LABELS.items():
        base = statistics.median(results[smallest][key])
        for size in sizes:
            figures.append(figure(f"{backend} {size:.0e}: {label}".replace("+0", ""),
                                  results[size][key], baseline=base,
                                  baseline_name=f"{smallest:.0e} runs".replace("+0", "")))  # fmt: skip
    return figures
