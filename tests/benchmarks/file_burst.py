"""File burst: a writer process moves N files (10,000; quick 2,000) into a folder watched by a
``batch``-mode ``on_change`` schedule of a real daemon, in one burst. Figure: time from the
burst's first move until every file is in the ledger with a recorded run (count verified exact),
and files/s; baseline: the writer's own move rate, measured in the same trial."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.benchmarks.figures import figure
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import make_project

SETTLE = 0.2
WRITER = """import json, os, sys, time
staging, inbox = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(staging))
began = time.time()
for name in names:
    os.replace(os.path.join(staging, name), os.path.join(inbox, name))
print(json.dumps({"began": began, "ended": time.time()}))
"""


def _stage(staging: Path, prefix: str, count: int) -> None:
    staging.mkdir()
    for i in range(count):
        (staging / f"{prefix}-{i:05d}.csv").write_text("x,y\n1,2\n")


def _settled(store, expected: int) -> bool:
    """All ``expected`` files counted and settled with a run: two cheap counts, so polling
    does not steal the daemon's CPU (the full ledger is read once, at the end)."""
    if store.count_file_fires("burst") < expected:
        return False
    from sqlalchemy import func, select

    from scheduler.store.models import FireRow

    with store.engine.connect() as conn:
        started = conn.scalar(
            select(func.count())
            .select_from(FireRow)
            .where(FireRow.schedule == "burst", FireRow.outcome == "started",
                   FireRow.run_id.is_not(None))
        )  # fmt: skip
    return started >= expected


def _verify(store, prefix: str, count: int, expected: int) -> int:
    """Exact: the ledger holds each file of this burst once, all started; returns run count."""
    fires = store.list_file_fires("burst")
    assert len(fires) == expected, (len(fires), expected)
    mine = [f for f in fires if f.path.startswith(f"inbox/{prefix}-")]
    assert len({f.path for f in mine}) == len(mine) == count, len(mine)
    assert all(f.outcome == "started" and f.run_id for f in mine)
    runs = {f.run_id for f in mine}
    assert all(store.get_run(r).schedule == "burst" for r in runs)
    return len(runs)


def main(quick: bool = False) -> list[dict]:
    count = 2_000 if quick else 10_000
    trials = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        project = make_project(root)
        project.pipeline(
            "burst",
            """
            parameters:
              f: {type: path, default: "inbox"}
            steps:
              s: {type: python_script, script: s.py, arguments: ["${{parameters.f}}"], allow_reuse: false}
            """,
            {"s.py": "pass\n"},
        )  # fmt: skip
        project.schedules(f"""
            schedules:
              - name: burst
                pipeline: burst
                concurrency: allow
                on_change: {{datastore: default, path: inbox/, patterns: ["*.csv"], mode: batch,
                            settle: {SETTLE}, data_path_parameter: f}}
        """)
        inbox = project.datastore / "inbox"
        inbox.mkdir(parents=True)
        writer = root / "writer.py"
        writer.write_text(WRITER)
        daemon = DaemonProcess(project).start()
        store = project.store()
        elapsed, rates, move_rates = [], [], []
        try:
            for trial in range(trials):
                staging = root / f"staging{trial}"
                _stage(staging, f"t{trial}", count)
                done = subprocess.run(
                    [sys.executable, str(writer), str(staging), str(inbox)],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                times = json.loads(done.stdout)
                expected = count * (trial + 1)
                wait_until(lambda e=expected: _settled(store, e), timeout=300, interval=0.05)
                seconds = time.time() - times["began"]
                runs = _verify(store, f"t{trial}", count, expected)
                elapsed.append(seconds * 1000)
                rates.append(count / seconds)
                move_rates.append(count / (times["ended"] - times["began"]))
                print(f"trial {trial}: {count} files in {seconds:.2f}s, {runs} runs",
                      file=sys.stderr)  # fmt: skip
        finally:
            store.close()
            daemon.stop()
            daemon.close()
    move = sorted(move_rates)[len(move_rates) // 2]
    return [
        figure(f"{count}-file burst -> all in ledger with runs", elapsed),
        figure(f"{count}-file burst ingest rate", rates, unit="files/s", baseline=move,
               baseline_name="writer's move rate"),
    ]  # fmt: skip
