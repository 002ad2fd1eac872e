"""A real daemon serving thousands of schedules: the one that falls due fires, on each of its
times, and none of the others does; its status counts them all and names the next to fire."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import wait_until
from tests.projects import make_project

MANY = 3_000
FAR = "start: '2999-01-01T00:00:00'"  # never due while the test runs


def _schedules() -> str:
    lines = ["schedules:"]
    for i in range(MANY):
        when = "interval: 1h" if i % 2 else f"cron: '{i % 60} {i % 24} * * *'"
        lines.append(f"  - {{name: far{i:04d}, pipeline: tick, {when}, {FAR}}}")
    lines.append("  - {name: every, pipeline: tick, interval: 1s}")
    return "\n".join(lines) + "\n"


def test_among_thousands_of_schedules_only_the_due_one_fires(tmp_path: Path, daemons) -> None:
    project = make_project(tmp_path)
    project.pipeline(
        "tick",
        "steps:\n  s: {type: python_script, script: s.py, allow_reuse: false}\n",
        {"s.py": "print('tick')\n"},
    )
    project.schedules(_schedules())
    daemon = daemons(project).start(timeout=120)

    def runs():
        with project.store() as store:
            return store.list_runs(limit=0)

    wait_until(lambda: len([r for r in runs() if r.status == "completed"]) >= 2, timeout=60)
    status = wait_until(
        lambda: next((m for m in daemon.poll_messages() if "next every in" in m), None),
        timeout=60,
    )
    assert daemon.stop() == 0
    assert {r.schedule for r in runs()} == {"every"}
    assert f"{MANY + 1} schedules" in status
    with project.store() as store:
        fired = {f.nominal_time for f in store.list_fires("every", limit=0)}
        assert len(fired) >= 2
        assert all(not store.list_fires(f"far{i:04d}", limit=0) for i in range(0, MANY, 97))
