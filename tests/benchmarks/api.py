"""REST API figures (issue 6): submit latency (POST to a recorded ``queued`` run: the answer
comes after the record's commit) and requests per second on ``GET /api/v1/runs`` with 100,000
runs in the store.

The server runs in a subprocess of its own (``python -m tests.benchmarks.api --serve ROOT``), as
the daemon would, so the client's threads do not share its GIL; both share the machine's cores.
Runs are filled in with bulk inserts straight into the store's tables (a benchmark-only helper:
100,000 runs through ``create_run`` would take minutes and measure nothing of the API).
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from tests.api_server import TRAIN
from tests.projects import make_project

RUNS = 100_000
CLIENT_THREADS = 4


def fill_runs(store, count: int, pipeline: str = "train") -> None:
    """``count`` finished runs with one step each, oldest first, in bulk transactions."""
    from sqlalchemy import insert

    from scheduler.core.ids import new_run_id
    from scheduler.store.models import RunRow, StepRunRow

    start = datetime.now(UTC) - timedelta(days=30)
    statuses = ("completed", "completed", "completed", "failed", "canceled")
    chunk = 10_000
    with store.engine.begin() as conn:
        for first in range(0, count, chunk):
            runs, steps = [], []
            for i in range(first, min(count, first + chunk)):
                created = start + timedelta(seconds=i * 10)
                run_id = new_run_id(created)
                status = statuses[i % len(statuses)]
                runs.append(
                    {
                        "id": run_id, "pipeline": pipeline, "version": None,
                        "pipeline_version_id": None, "content_hash": "bench",
                        "experiment": pipeline, "status": status, "status_reason": None,
                        "recovered": False, "trigger": "manual", "schedule": None,
                        "parameters": {"reg": 0.1}, "owner_host": None, "owner_pid": None,
                        "owner_start_ticks": None, "created_at": created,
                        "started_at": created, "finished_at": created + timedelta(seconds=3),
                    }
                )  # fmt: skip
                steps.append(
                    {
                        "run_id": run_id, "step": "train", "attempt": 1, "display_name": "train",
                        "type": "python_script", "status": status, "outputs": {},
                        "started_at": created, "finished_at": created + timedelta(seconds=3),
                    }
                )  # fmt: skip
            conn.execute(insert(RunRow), runs)
            conn.execute(insert(StepRunRow), steps)


def serve(root: Path) -> None:
    """The child: serve the project's API until stdin closes; print URL and token first."""
    import asyncio

    from scheduler.services.tokens import create_token
    from tests.api_server import live_api
    from tests.projects import Project

    project = Project(root)
    with project.store() as store, live_api(project.config(), store) as api:
        print(json.dumps({"url": api.url, "token": create_token(store, "bench")}), flush=True)
        sys.stdin.read()
    del asyncio


class Client:
    """Keep-alive HTTP/1.1 with the stdlib: the cheapest client, so the server is measured."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        payload = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=payload, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def _figure(name: str, samples: list[float], unit: str) -> dict:
    ordered = sorted(samples)
    return {
        "name": name,
        "unit": unit,
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "ratio": None,
        "baseline": None,
        "trials": len(ordered),
    }


def _throughput(url: str, token: str, path: str, seconds: float) -> float:
    """Requests per second that CLIENT_THREADS keep-alive clients get answered (all 200)."""
    done = [0] * CLIENT_THREADS
    stop = time.monotonic() + seconds

    def work(slot: int) -> None:
        client = Client(url, token)
        while time.monotonic() < stop:
            status, _ = client.request("GET", path)
            assert status == 200, status
            done[slot] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(CLIENT_THREADS)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - began)


def main(quick: bool = False) -> list[dict]:
    submits = 50 if quick else 300
    seconds = 3.0 if quick else 10.0
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp))
        project.pipeline("train", TRAIN, {"train.py": "print('hi')\n"})
        with project.store() as store:
            began = time.perf_counter()
            fill_runs(store, RUNS)
            print(f"filled {RUNS} runs in {time.perf_counter() - began:.1f}s", file=sys.stderr)
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.benchmarks.api", "--serve", tmp],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            hello = json.loads(child.stdout.readline())
            url, token = hello["url"], hello["token"]
            client = Client(url, token)
            body = {"ExperimentName": "bench", "ParameterAssignments": {"reg": 0.5}}
            latencies = []
            for _ in range(submits):
                began = time.perf_counter()
                status, answer = client.request("POST", "/api/v1/pipelines/train/runs", body)
                latencies.append((time.perf_counter() - began) * 1000)
                assert status == 202, answer
            figures = [_figure("api submit latency (POST → queued record)", latencies, "ms")]
            for label, path in (
                ("GET /api/v1/runs (limit 20)", "/api/v1/runs"),
                (
                    "GET /api/v1/runs?status=failed&limit=100",
                    "/api/v1/runs?status=failed&limit=100",
                ),
            ):
                rates = [_throughput(url, token, path, seconds / 2) for _ in range(2)]
                figures.append(_figure(f"{label}, {RUNS // 1000}k runs", rates, "req/s"))
        finally:
            child.stdin.close()
            child.wait(30)
    return figures


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    serve(Path(sys.argv[2]))
