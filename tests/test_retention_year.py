"""A year of nightly runs with ``retention: {runs: 30d, keep_last: 5}`` and a prune each day,
on a clock the test moves a night at a time: the state stops growing after the first month,
and no kept run loses its logs or the outputs it reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.services.retention import human_bytes, prune, state_bytes
from scheduler.store import Store
from tests.projects import make_project
from tests.retention_world import NIGHTLY, ManualClock, run_night

DAYS = 365


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_year_of_nightly_runs_keeps_the_state_flat_after_the_window(tmp_path: Path):
    project = make_project(tmp_path / "p", retention={"runs": "30d", "keep_last": 5})
    project.pipeline("nightly", NIGHTLY)
    config = project.config()
    clock = ManualClock()
    folders: list[int] = []  # state bytes (run folders, outputs) after each night's prune
    rows: list[int] = []  # run rows after each night's prune
    database: list[int] = []
    with Store.open(config.database_url, clock=clock) as store:
        first = run_night(project, store, clock, 0)
        for day in range(DAYS):
            if day:
                night = run_night(project, store, clock, day)
                assert night.run.status == "completed", night.to_json()
                assert night.latest_attempts()["prepare"].reused_from == first.run.id
            prune(config, store, clock)
            folders.append(sum(state_bytes(config).values()))
            rows.append(store.run_count())
            database.append(store.database_bytes())
            kept = store.list_runs(limit=0)
            if day % 7 and day != DAYS - 1:
                continue  # every kept run's files are checked once a week
            for run in kept:
                detail = store.get_run_detail(run.id)
                for attempt in detail.attempts:
                    if attempt.status == "completed":
                        assert attempt.log_path and Path(attempt.log_path).exists(), (day, run.id)
                    for output in attempt.outputs.values():
                        assert Path(output).exists(), (day, run.id, attempt.step)
        assert first.run.id in {run.id for run in kept}

    for day in (1, 30, 35, 90, 180, 364):
        print(
            f"day {day:>3}: {rows[day]:>3} runs, folders {human_bytes(folders[day])}, "
            f"database {human_bytes(database[day])}"
        )
    # 31 nights inside the window, plus the first night, which every later night reused from.
    assert max(rows[31:]) == rows[35] == 32
    assert max(folders[31:]) <= folders[35] * 1.05
    assert max(database[60:]) <= database[60] * 1.25
