"""The time a run stands for, end to end: a real daemon on a test clock fires a cron schedule in
Europe/Berlin on the day clocks spring forward, a catch-up replays missed fires, and a manual
``pipesched run`` stands for its request. Each step writes what it saw (its templated arguments,
its ``PIPESCHED_*`` variables, ``Run.get_context()``), and that must be what ``runs --json``
and ``show`` say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.daemon_harness import set_clock
from tests.projects import Project, make_project

pytestmark = pytest.mark.slow

HOUR = 3600

SCRIPT = """\
import json, os, sys
from scheduler.runtime import Run

run = Run.get_context()
names = ("PIPESCHED_NOMINAL_TIME", "PIPESCHED_INTERVAL_START", "PIPESCHED_INTERVAL_END")
seen = {
    "run_id": os.environ["PIPESCHED_RUN_ID"],
    "arguments": sys.argv[1:],
    "environment": [os.environ.get(name) for name in names],
    "context": [
        None if moment is None else moment.isoformat()
        for moment in (run.nominal_time, run.interval_start, run.interval_end)
    ],
    "forked": any(arg.endswith("zygote.py") for arg in sys.orig_argv),
}
with open(SEEN, "a") as out:
    out.write(json.dumps(seen) + "\\n")
"""

PIPELINE = """\
steps:
  look:
    type: python_script
    script: look.py
    allow_reuse: false
    arguments:
      - "${{run.nominal_time}}"
      - "${{run.nominal_date}}"
      - "${{run.interval_start}}"
      - "${{run.interval_end}}"
"""


def make_looking_project(root: Path, *, warm: bool = False) -> tuple[Project, Path]:
    """A project whose one step writes what it saw to ``seen.jsonl``; with ``warm``, the steps
    are forked from the target's zygote."""
    compute = {"local": {"type": "local", "max_workers": 2}}
    if warm:
        compute["local"]["warm_imports"] = ["json"]
    project = make_project(root, shutdown_grace="1s", compute=compute)
    seen = root / "seen.jsonl"
    project.pipeline("look", PIPELINE, {"look.py": f"SEEN = {str(seen)!r}\n" + SCRIPT})
    return project, seen


def seen_by_run(seen: Path) -> dict[str, dict]:
    if not seen.exists():
        return {}
    return {doc["run_id"]: doc for doc in map(json.loads, seen.read_text().splitlines())}


def runs_json(project: Project) -> list[dict]:
    listed = project.cli("runs", "--json", "--limit", "50")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def finished(project: Project, count: int) -> list[dict]:
    runs = runs_json(project)
    done = [r for r in runs if r["status"] in ("completed", "failed", "canceled")]
    return done if len(done) >= count else []


def instant(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def clock_at(path: Path, moment: datetime) -> None:
    """Put the daemon's test clock at ``moment`` (it runs on in real time from there)."""
    set_clock(path, (moment - datetime.now(UTC)).total_seconds())


@pytest.mark.parametrize("warm", [False, True], ids=["spawned", "forked"])
def test_a_berlin_cron_fire_on_the_spring_change_is_what_the_step_sees(
    tmp_path: Path, daemons, warm: bool
) -> None:
    """``0 2 * * *`` in Berlin fires at 03:00 CEST on 2027-03-28 (02:00 does not exist): the
    run stands for 01:00 UTC and covers the 23 real hours since 02:00 CET the day before."""
    project, seen = make_looking_project(tmp_path, warm=warm)
    project.schedules("""
        schedules:
          - {name: nightly, pipeline: look, cron: "0 2 * * *", timezone: Europe/Berlin}
    """)
    clock = tmp_path / "clock"
    fire = datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    clock_at(clock, fire - timedelta(hours=1))
    daemon = daemons(project, clock_file=clock).start()  # registered an hour before the fire
    if warm:  # a step due before its target's zygote is ready is spawned instead
        wait_until(lambda: daemon.events("zygote_ready"), timeout=60)
    clock_at(clock, fire - timedelta(seconds=2))  # the daemon follows the jump
    (run,) = wait_until(lambda: finished(project, 1), timeout=60)
    daemon.stop()

    assert run["status"] == "completed", run
    assert run["trigger"] == "schedule:nightly"
    assert (run["nominal_time"], run["interval_start"], run["interval_end"]) == (
        "2027-03-28T01:00:00.000000+00:00",
        "2027-03-27T01:00:00.000000+00:00",
        "2027-03-28T01:00:00.000000+00:00",
    )
    step = seen_by_run(seen)[run["id"]]
    assert step["arguments"] == [
        "2027-03-28T03:00:00+02:00",
        "2027-03-28",
        "2027-03-27T02:00:00+01:00",
        "2027-03-28T03:00:00+02:00",
    ]
    assert step["environment"] == [step["arguments"][0], *step["arguments"][2:]]
    assert [instant(t) for t in step["context"]] == [
        instant(run[key]) for key in ("nominal_time", "interval_start", "interval_end")
    ]
    assert step["forked"] is warm

    shown = project.cli("show", run["id"])
    assert shown.returncode == 0, shown.stderr
    (line,) = [line for line in shown.stdout.splitlines() if line.startswith("Stands for")]
    assert (
        line.split(None, 2)[2]
        == "2027-03-28 03:00 CEST (interval 03-27 02:00 CET → 03-28 03:00 CEST)"
    )
    assert len(line) <= 80
    detail = json.loads(project.cli("show", run["id"], "--json").stdout)
    assert detail["nominal_time"] == run["nominal_time"]


def test_catch_up_all_runs_each_missed_fire_for_its_own_time(tmp_path: Path, daemons) -> None:
    """Down three hours under an hourly cron with ``catchup: all``: three runs, each standing
    for its own hour and covering the hour before it, in order."""
    project, seen = make_looking_project(tmp_path)
    project.schedules("""
        schedules:
          - {name: hourly, pipeline: look, cron: "0 * * * *", catchup: all, catchup_limit: 5}
    """)
    clock = tmp_path / "clock"
    set_clock(clock, 0)
    daemons(project, clock_file=clock).start().stop()  # registers the schedule now
    set_clock(clock, 3 * HOUR)
    daemon = daemons(project, clock_file=clock).start()
    runs = wait_until(lambda: finished(project, 3), timeout=60)
    daemon.stop()

    assert len(runs) == 3 and all(r["status"] == "completed" for r in runs), runs
    with project.store() as store:
        fired = {f.run_id: f.nominal_time for f in store.list_fires("hourly", limit=0)}
    nominal = sorted(instant(r["nominal_time"]) for r in runs)
    assert len(set(nominal)) == 3
    for run in runs:
        assert instant(run["nominal_time"]) == fired[run["id"]]
        assert instant(run["interval_end"]) == instant(run["nominal_time"])
        assert instant(run["interval_end"]) - instant(run["interval_start"]) == timedelta(hours=1)
        step = seen_by_run(seen)[run["id"]]
        assert instant(step["arguments"][0]) == instant(run["nominal_time"])
    by_creation = sorted(runs, key=lambda r: r["created_at"])
    assert [instant(r["nominal_time"]) for r in by_creation] == nominal  # replayed in order


def test_a_manual_run_stands_for_its_request_and_has_no_interval(tmp_path: Path) -> None:
    """Twice, so both write paths are seen: the first run compiles the pipeline, the second
    runs the compiled plan with the lean writer."""
    project, seen = make_looking_project(tmp_path)
    for _ in range(2):
        before = datetime.now(UTC)
        done = project.cli("run", "look", "--json")
        after = datetime.now(UTC)
        assert done.returncode == 0, done.stderr
        run = json.loads(done.stdout)
        assert before <= instant(run["nominal_time"]) <= after
        assert run["nominal_time"] == run["created_at"]
        assert run["interval_start"] is None and run["interval_end"] is None
        step = seen_by_run(seen)[run["id"]]
        assert instant(step["arguments"][0]) == instant(run["nominal_time"])
        assert step["arguments"][1] == instant(run["nominal_time"]).date().isoformat()
        assert step["arguments"][2:] == ["", ""]
        assert step["environment"][1:] == ["", ""]
        assert step["context"][1:] == [None, None]
        shown = project.cli("show", run["id"])
        assert "Stands for" not in shown.stdout
    listed = runs_json(project)
    assert len(listed) == 2 and all(r["interval_start"] is None for r in listed)
