"""File drops at volume: 10,000 files in one burst, and 200 renamed into place one by one, each
handled once. A writer process drops the files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.file_drops_harness import Service, file_drop_project, on_change

WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    staging, inbox, count, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    names = [f"d{i:05d}.csv" for i in range(count)]
    for name in names:
        with open(os.path.join(staging, name), "w") as f:
            f.write(name)
    stamps = {}
    for name in names:
        os.rename(os.path.join(staging, name), os.path.join(inbox, name))
        stamps[name] = time.time()
        if pause:
            time.sleep(pause)
    print(json.dumps(stamps))
    """
)


@pytest.fixture
def project(tmp_path: Path):
    project = file_drop_project(tmp_path, max_concurrent_runs=8)
    for folder in ("inbox", "staging"):
        (project.datastore / folder).mkdir()
    return project


def write(project, count: int, pause: float) -> dict[str, float]:
    """Run the writer process; the rename time of each file."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            WRITER,
            str(project.datastore / "staging"),
            str(project.datastore / "inbox"),
            str(count),
            str(pause),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


@pytest.mark.slow
def test_a_burst_of_10000_files_is_handled_exactly_once(project, record_property):
    service = Service(project, on_change(mode="batch", settle="0.5s")).start()
    try:
        started = time.monotonic()
        write(project, 10_000, 0)

        def handled() -> int:
            return sum(int(r.trigger.split(":")[1]) for r in service.runs())

        wait_until(lambda: handled() >= 10_000, timeout=60, interval=0.1)
        elapsed = time.monotonic() - started
        ledger = service.ledger()
        assert handled() == 10_000
        assert len(ledger) == 10_000 and len({f.path for f in ledger}) == 10_000
        assert {f.outcome for f in ledger} == {"started"}
        assert service.status()["pending"] == 0
        record_property("burst_10000_seconds", round(elapsed, 2))
        print(f"\n10,000-file burst handled (ledger + batch runs recorded) in {elapsed:.2f}s")
    finally:
        service.close()


@pytest.mark.slow
def test_200_files_renamed_into_place_one_by_one_are_each_handled_once(project):
    """per_file, 200 files renamed into place 50 ms apart: one run each, each file once. (The
    delay from rename to the run's first step is a figure: tests/benchmarks/file_drop_delay.py.)"""
    service = Service(project, on_change(settle="1s")).start()
    try:
        stamps = write(project, 200, 0.05)
        wait_until(lambda: len(service.runs()) == 200, timeout=60, interval=0.1)
        wait_until(service.finished, timeout=60, interval=0.1)
        names = [run.trigger.rsplit("/", 1)[1] for run in service.runs()]
        assert sorted(names) == sorted(stamps)
        assert {run.status for run in service.runs()} == {"completed"}
        ledger = service.ledger()
        assert len(ledger) == 200 and {f.outcome for f in ledger} == {"started"}
        assert service.status()["pending"] == 0
    finally:
        service.close()
