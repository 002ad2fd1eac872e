"""Backfills: each nominal time of a schedule in a range runs once, in order, with the time it
stands for; times already fired or backfilled are skipped unless rerun; a dry run writes
nothing; a daemon killed with ``kill -9`` carries on where it stopped; a live fire and a backfill
never run one time twice and keep the schedule's overlap policy. Real SQLite files, real
``pipesched`` processes, real daemons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from scheduler.core.errors import NotFound
from scheduler.definitions.schedules import ScheduleDef
from scheduler.services.backfill_plan import (
    MAX_TIMES,
    BackfillError,
    create_backfill,
    get_backfill,
    nominal_times,
    parse_bound,
    plan_backfill,
)
from scheduler.store import Store
from scheduler.store.models import BackfillRow, BackfillTimeRow, FireRow
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project, make_project

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _nightly(**fields: object) -> ScheduleDef:
    return ScheduleDef.model_validate(
        {"name": "nightly", "pipeline": "noop", "cron": "0 2 * * *", "timezone": "Europe/Berlin"}
        | fields
    )


def _rows(store: Store, table: type) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


# -- planning: fast, in this process ----------------------------------------------------------------


def test_dates_are_whole_days_in_the_schedule_zone_and_times_keep_their_offset() -> None:
    assert parse_bound("2026-03-29", BERLIN, end=False) == datetime(2026, 3, 29, tzinfo=BERLIN)
    last = parse_bound("2026-03-29", BERLIN, end=True)
    assert (last.date(), last.hour, last.minute) == (datetime(2026, 3, 29).date(), 23, 59)
    assert parse_bound("2026-03-29T02:00Z", BERLIN, end=False) == datetime(
        2026, 3, 29, 2, tzinfo=UTC
    )
    with pytest.raises(BackfillError, match="neither a date"):
        parse_bound("last tuesday", BERLIN, end=False)


def test_thirty_days_across_spring_forward_are_thirty_times_at_two_local() -> None:
    schedule = _nightly()
    first = parse_bound("2026-03-15", BERLIN, end=False)
    last = parse_bound("2026-04-13", BERLIN, end=True)
    times = nominal_times(schedule, None, first, last, NOW)
    assert len(times) == 30
    local = [t.astimezone(BERLIN) for t in times]
    assert [t.day for t in local[:3]] == [15, 16, 17]
    # 02:00 does not exist on the 29th: the first valid time after it, 03:00 CEST.
    assert {(t.hour, t.minute) for t in local if t.day != 29 or t.month != 3} == {(2, 0)}
    assert next(t for t in local if (t.month, t.day) == (3, 29)).hour == 3
    assert times[13].utcoffset() == timedelta(hours=1)
    assert times[-1].utcoffset() == timedelta(hours=2)


def test_times_still_to_come_are_left_to_the_schedule() -> None:
    times = nominal_times(
        _nightly(),
        None,
        parse_bound("2026-05-30", BERLIN, end=False),
        parse_bound("2026-06-10", BERLIN, end=True),
        NOW,
    )
    assert [t.day for t in times] == [30, 31, 1]


def test_too_many_times_is_refused_with_the_limit() -> None:
    every_minute = _nightly(cron="* * * * *")
    with pytest.raises(BackfillError, match=f"more than {MAX_TIMES}"):
        nominal_times(
            every_minute,
            None,
            parse_bound("2026-01-01", BERLIN, end=False),
            parse_bound("2026-01-31", BERLIN, end=True),
            NOW,
        )


def test_a_plan_names_fired_and_backfilled_times_and_writes_nothing(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as store:
        schedule = _nightly()
        first = parse_bound("2026-03-01", BERLIN, end=False)
        last = parse_bound("2026-03-05", BERLIN, end=True)
        times = nominal_times(schedule, None, first, last, NOW)
        store.claim_fire("nightly", times[1])  # a live fire
        made = create_backfill(
            store,
            schedule,
            parse_bound("2026-03-04", BERLIN, end=False),
            last,
            max_concurrent=1,
            rerun=False,
            requested_by="test",
            owner=None,
            now=NOW,
        )
        store.claim_fire("nightly", times[3], outcome="queued", reason=f"backfill:{made.id}")
        counts = (_rows(store, BackfillRow), _rows(store, BackfillTimeRow), _rows(store, FireRow))

        plan = plan_backfill(store, schedule, first, last, rerun=False, now=NOW)
        again = plan_backfill(store, schedule, first, last, rerun=True, now=NOW)

        assert [(t.action, t.reason) for t in plan.times] == [
            ("run", None),
            ("skip", "already fired"),
            ("run", None),
            ("skip", "already backfilled"),
            ("run", None),
        ]
        assert [t.action for t in again.times] == ["run"] * 5
        assert again.times[1].reason == "rerun (already fired)"
        assert counts == (
            _rows(store, BackfillRow),
            _rows(store, BackfillTimeRow),
            _rows(store, FireRow),
        )
        assert get_backfill(store, made.id[:9]).total == 2
        with pytest.raises(NotFound):
            get_backfill(store, "zzzz")


# -- end to end: slow -----------------------------------------------------------------------------

SEEN_STEP = """
    import json, os, pathlib
    seen = pathlib.Path({seen!r})
    seen.mkdir(exist_ok=True)
    names = ("PIPESCHED_RUN_ID", "PIPESCHED_NOMINAL_TIME", "PIPESCHED_INTERVAL_START",
             "PIPESCHED_INTERVAL_END")
    values = {{name: os.environ.get(name) for name in names}}
    (seen / (os.environ["PIPESCHED_RUN_ID"] + ".json")).write_text(json.dumps(values))
    import time; time.sleep({sleep})
"""


def _project(tmp_path: Path, schedules: str, *, sleep: float = 0.0) -> Project:
    project = make_project(tmp_path / "p")
    project.pipeline(
        "noop",
        """
        steps:
          see:
            type: python_script
            script: see.py
            allow_reuse: false
        """,
        {"see.py": SEEN_STEP.format(seen=str(tmp_path / "seen"), sleep=sleep)},
    )
    project.schedules(schedules)
    return project


NIGHTLY = """
schedules:
  - name: nightly
    pipeline: noop
    cron: "0 2 * * *"
    timezone: Europe/Berlin
"""


def _runs(project: Project) -> list[dict]:
    listed = project.cli("runs", "--json", "--limit", "0")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def _seen(tmp_path: Path) -> dict[str, dict]:
    folder = tmp_path / "seen"
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}


@pytest.mark.slow
def test_a_daemon_backfills_thirty_berlin_nights_across_dst_each_with_its_time(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path, NIGHTLY)
    daemon = DaemonProcess(project).start()
    try:
        done = project.cli(
            "backfill", "nightly", "--from", "2026-03-15", "--to", "2026-04-13", "--json"
        )
        assert done.returncode == 0, done.stderr
        backfill = json.loads(done.stdout)
        assert (backfill["status"], backfill["total"], backfill["done"]) == ("completed", 30, 30)
        runs = [r for r in _runs(project) if r["trigger"] == f"backfill:{backfill['id']}"]
        assert len(runs) == 30
        seen = _seen(tmp_path)
        expected_days = [datetime(2026, 3, 15) + timedelta(days=n) for n in range(30)]
        by_nominal = sorted(runs, key=lambda r: r["nominal_time"])
        previous = datetime(2026, 3, 14, 2, tzinfo=BERLIN)
        for day, run in zip(expected_days, by_nominal, strict=True):
            hour = 3 if (day.month, day.day) == (3, 29) else 2
            nominal = datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN)
            assert datetime.fromisoformat(run["nominal_time"]) == nominal
            assert datetime.fromisoformat(run["interval_start"]) == previous
            assert datetime.fromisoformat(run["interval_end"]) == nominal
            step = seen[run["id"]]  # what the step process itself was given
            assert step["PIPESCHED_NOMINAL_TIME"] == nominal.isoformat()
            assert step["PIPESCHED_INTERVAL_START"] == previous.astimezone(BERLIN).isoformat()
            assert step["PIPESCHED_INTERVAL_END"] == nominal.isoformat()
            previous = nominal
        listed = project.cli("backfills")
        assert backfill["id"] in listed.stdout and "30/30" in listed.stdout
        assert all(len(line) <= 80 for line in listed.stdout.splitlines())
    finally:
        daemon.stop()
        daemon.close()


@pytest.mark.slow
def test_in_the_foreground_a_second_backfill_runs_nothing_unless_rerun(tmp_path: Path) -> None:
    project = _project(tmp_path, NIGHTLY)
    args = ("backfill", "nightly", "--from", "2026-03-01", "--to", "2026-03-03", "--json")

    dry = project.cli(*args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [t["action"] for t in json.loads(dry.stdout)["times"]] == ["run"] * 3
    listed = project.cli("backfills", "--json")
    assert json.loads(listed.stdout) == []  # the dry run wrote nothing

    first = project.cli(*args)
    assert first.returncode == 0, first.stderr
    assert len(_runs(project)) == 3

    second = project.cli(*args)
    assert second.returncode == 0, second.stderr
    skipped = json.loads(second.stdout)
    assert (skipped["counts"]["skipped"], skipped["counts"]["completed"]) == (3, 0)
    assert len(_runs(project)) == 3

    again = project.cli(*args, "--rerun")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"]["completed"] == 3
    runs = _runs(project)
    assert len(runs) == 6
    assert sorted(Counter(r["nominal_time"] for r in runs).values()) == [2, 2, 2]


def _backfill(project: Project, backfill_id: str) -> dict:
    status, body = daemon_request(project, "GET", f"/api/v1/backfills/{backfill_id}")
    assert status == 200, body
    return body


@pytest.mark.slow
def test_after_kill_9_halfway_the_restarted_daemon_runs_the_rest_none_twice(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path, NIGHTLY, sleep=0.4)
    daemon = DaemonProcess(project).start()
    try:
        status, made = daemon_request(
            project,
            "POST",
            "/api/v1/schedules/nightly/backfills",
            {"from": "2026-03-01", "to": "2026-03-10"},
        )
        assert status == 201, made
        wait_until(lambda: _backfill(project, made["id"])["done"] >= 4, timeout=60)
        daemon.kill9()
        daemon.close()
        daemon = DaemonProcess(project).start()
        final = wait_until(
            lambda: (b := _backfill(project, made["id"]))["status"] != "running" and b,
            timeout=90,
            message="the backfill did not end after the restart",
        )
    finally:
        daemon.stop()
        daemon.close()
    runs = [r for r in _runs(project) if r["trigger"] == f"backfill:{made['id']}"]
    per_time = Counter(r["nominal_time"] for r in runs)
    assert len(per_time) == 10, final and set(per_time.values()) == {1}
    # The run the kill cut short ends as recovery closes it; every other time completed.
    assert final["counts"]["completed"] + final["counts"]["failed"] == 10
    assert final["counts"]["failed"] <= 1
    assert [t["outcome"] for t in final["times"][-5:]] == ["completed"] * 5


@pytest.mark.slow
def test_a_backfill_beside_live_fires_runs_no_time_twice_and_never_overlaps_under_forbid(
    tmp_path: Path,
) -> None:
    project = _project(
        tmp_path,
        """
        schedules:
          - name: often
            pipeline: noop
            cron: "*/2 * * * * *"
            concurrency: forbid
        """,
        sleep=1.2,
    )
    daemon = DaemonProcess(project).start()
    try:
        with project.store() as store:
            wait_until(lambda: store.count_fires("often") >= 2, timeout=30)
        start = (datetime.now(UTC) - timedelta(seconds=16)).isoformat()
        done = project.cli(
            "backfill",
            "often",
            "--from",
            start,
            "--to",
            datetime.now(UTC).isoformat(),
            "--max-concurrent",
            "2",
            "--json",
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        backfill = json.loads(done.stdout)
    finally:
        daemon.stop()
        daemon.close()
    assert backfill["counts"]["completed"] >= 3
    assert backfill["counts"]["skipped"] >= 1  # times the live schedule had fired
    runs = [r for r in _runs(project) if r["schedule"] == "often" and r["started_at"]]
    assert set(Counter(r["nominal_time"] for r in runs).values()) == {1}
    spans = sorted((r["started_at"], r["finished_at"]) for r in runs)
    for (_, finished), (started, _) in pairwise(spans):
        assert started >= finished  # forbid: never two runs of the schedule at once
    fires = json.loads(project.cli("fires", "often", "--json", "--limit", "0").stdout)
    assert any(f["outcome"] == "skipped" and f["reason"] == "overlap" for f in fires)


@pytest.mark.slow
def test_rest_creates_lists_reads_and_cancels_a_backfill(tmp_path: Path) -> None:
    project = _project(tmp_path, NIGHTLY, sleep=30)
    daemon = DaemonProcess(project).start()
    try:
        path = "/api/v1/schedules/nightly/backfills"
        body = {"from": "2026-03-01", "to": "2026-03-10", "dry_run": True}
        status, plan = daemon_request(project, "POST", path, body)
        assert status == 200 and plan["total"] == plan["to_run"] == 10
        assert daemon_request(project, "GET", "/api/v1/backfills") == (200, [])
        assert daemon_request(project, "POST", "/api/v1/schedules/nope/backfills", body)[0] == 404
        bad = daemon_request(project, "POST", path, body | {"max_concurrent": 0})
        assert bad[0] == 422

        status, made = daemon_request(project, "POST", path, body | {"dry_run": False})
        assert status == 201 and made["status"] == "running" and made["total"] == 10
        listed = daemon_request(project, "GET", "/api/v1/backfills")[1]
        assert [b["id"] for b in listed] == [made["id"]]
        first = wait_until(
            lambda: (t := _backfill(project, made["id"])["times"][0])["outcome"] == "started" and t,
            timeout=30,
        )
        status, canceled = daemon_request(
            project, "POST", f"/api/v1/backfills/{made['id'][:8]}/cancel"
        )
        assert status == 200 and canceled["status"] == "canceled"
        final = _backfill(project, made["id"])
        assert {t["outcome"] for t in final["times"]} == {"canceled"}
        run = json.loads(project.cli("show", first["run_id"], "--json").stdout)
        assert (run["status"], run["status_reason"]) == ("canceled", "canceled by user")
        # Times never begun keep no fire record: a later backfill may run them.
        fires = json.loads(project.cli("fires", "nightly", "--json").stdout)
        assert len(fires) == 1
    finally:
        daemon.stop()
        daemon.close()


@pytest.mark.slow
def test_sdk_schedules_backfill_through_the_daemon_embedded_and_over_rest(tmp_path: Path) -> None:
    from scheduler.sdk import Schedule, Workspace

    project = _project(tmp_path, NIGHTLY)
    daemon = DaemonProcess(project).start()
    try:
        embedded = Workspace(config=project.config_path)
        handle = Schedule.get(embedded, "nightly").backfill("2026-03-01", "2026-03-02")
        assert handle.wait(timeout=60).status == "completed"
        assert (handle.done, handle.total) == (2, 2)

        url = daemon.events("api_listening")[0]["url"]
        remote = Workspace(url=url, token=project.token("backfills"))
        again = Schedule.get(remote, "nightly").backfill(
            datetime(2026, 3, 1, tzinfo=BERLIN), datetime(2026, 3, 3, 12, tzinfo=BERLIN)
        )
        assert again.wait(timeout=60).status == "completed"
        assert again.refresh().counts == {
            "pending": 0,
            "started": 0,
            "skipped": 2,  # the embedded backfill's days
            "completed": 1,
            "failed": 0,
            "canceled": 0,
        }
    finally:
        daemon.stop()
        daemon.close()
    assert len(_runs(project)) == 3


@pytest.mark.slow
def test_backfill_cancel_without_a_daemon_stops_the_foreground_backfill(tmp_path: Path) -> None:
    project = _project(tmp_path, NIGHTLY, sleep=60)
    days = ("--from", "2026-03-01", "--to", "2026-03-05")
    env = {**os.environ, "PIPESCHED_CONFIG": str(project.config_path), "NO_COLOR": "1"}
    foreground = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", "backfill", "nightly", *days, "--json"],
        env=env,
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with project.store() as store:
            started = wait_until(
                lambda: next(
                    (
                        (b.id, t.run_id)
                        for b in store.list_backfills()
                        for t in store.backfill_times(b.id)
                        if t.outcome == "started"
                    ),
                    None,
                ),
                timeout=30,
            )
        canceled = project.cli("backfill", "cancel", started[0], "--json")
        assert canceled.returncode == 0, canceled.stderr
        assert json.loads(canceled.stdout)["status"] == "canceled"
        out, err = foreground.communicate(timeout=30)
    finally:
        if foreground.poll() is None:
            foreground.kill()
            foreground.wait()
    assert foreground.returncode == 1, err
    assert json.loads(out)["counts"]["canceled"] == 5
    run = json.loads(project.cli("show", started[1], "--json").stdout)
    assert (run["status"], run["status_reason"]) == ("canceled", "canceled by user")
