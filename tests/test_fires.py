"""The FireHandler without a daemon: a due time becomes a claimed fire record, then a run
request; late times follow the catch-up rule; an overlapping fire is skipped.

The handler gets the in-memory store (``tests.store_fake``), a test clock, and a real
Dispatcher running the gated one-step pipeline of ``tests.test_dispatch``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduler.core.clock import Clock
from scheduler.definitions.pipeline import Pipeline
from scheduler.definitions.schedules import ScheduleDef
from scheduler.dispatch.dispatcher import Dispatcher, Outcome, RunRequest
from scheduler.fires.handler import CATCHUP_REASON, FireHandler
from scheduler.store.records import FireRecord, ScheduleState
from tests.test_dispatch import World, until

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATE = [NOW - timedelta(hours=h) for h in (3, 2, 1)]  # oldest first, each > 60 s late


class StillClock(Clock):
    """Always ``NOW``: late is decided by the handler against this, not by the wall clock."""

    def now(self) -> datetime:
        return NOW


class ClaimCheckingDispatcher(Dispatcher):
    """A real dispatcher that notes, at each request, which fires were already claimed."""

    claimed_at_submit: list[list[tuple[str, datetime | None]]]

    async def submit(self, request: RunRequest) -> Outcome:
        claimed = self.store.fires_with_outcome("claimed")  # type: ignore[attr-defined]
        self.claimed_at_submit.append([(f.schedule, f.nominal_time) for f in claimed])
        return await super().submit(request)


class Fires:
    """A World whose dispatcher checks claims, plus a FireHandler over the same fake store."""

    def __init__(self, world: World, **schedule: Any) -> None:
        self.world, self.store = world, world.store
        self.dispatcher = ClaimCheckingDispatcher(world.project.config(), world.store)
        self.dispatcher.claimed_at_submit = []
        world.dispatcher = self.dispatcher  # World.close shuts this one down
        self.schedule = ScheduleDef(
            name="s", pipeline="gated", interval=3600, **{"concurrency": "forbid", **schedule}
        )
        self.handler = FireHandler(world.store, self.dispatcher, StillClock(), self)

    @property
    def schedules(self) -> dict[str, ScheduleDef]:
        """The served definitions the handler reads: this one schedule and its pipeline."""
        return {self.schedule.name: self.schedule}

    def pipeline_for(self, schedule: ScheduleDef) -> Pipeline:
        return self.world.pipeline

    def fires(self, outcome: str | None = None) -> list[FireRecord]:
        found = sorted(self.store.list_fires("s"), key=lambda f: f.nominal_time or NOW)
        return [f for f in found if outcome is None or f.outcome == outcome]

    def release_all(self) -> None:
        (self.world.gates / "release-all").write_text("")


def with_fires(tmp_path: Path, body: Callable[[Fires], Awaitable[None]], **schedule: Any) -> None:
    world = World(tmp_path)

    async def main() -> None:
        fires = Fires(world, **schedule)
        try:
            await body(fires)
            await fires.handler.wait_idle()
        finally:
            await world.close()

    asyncio.run(main())


# -- one fire --------------------------------------------------------------------------------


def test_a_due_time_is_claimed_before_its_run_is_requested(tmp_path: Path) -> None:
    due = NOW - timedelta(seconds=5)

    async def body(f: Fires) -> None:
        await f.handler.handle_due("s", [due])
        assert f.dispatcher.claimed_at_submit == [[("s", due)]]
        [fire] = f.fires()
        assert (fire.outcome, fire.reason) == ("started", None)
        assert fire.run_id is not None
        run = f.store.get_run_detail(fire.run_id).run
        assert (run.schedule, run.trigger, run.recovered) == ("s", "schedule:s", False)

    with_fires(tmp_path, body)


def test_a_fire_another_daemon_claimed_starts_no_run(tmp_path: Path) -> None:
    due = NOW - timedelta(seconds=5)

    async def body(f: Fires) -> None:
        assert f.store.claim_fire("s", due)  # the other daemon's claim
        assert await f.handler.fire(f.schedule, due) is None
        assert f.dispatcher.claimed_at_submit == []
        assert f.store.runs == {}

    with_fires(tmp_path, body)


def test_a_fire_whose_run_cannot_be_recorded_is_skipped_with_the_error(tmp_path: Path) -> None:
    async def body(f: Fires) -> None:
        await f.handler.handle_due("s", [NOW])
        [fire] = f.fires()
        assert fire.outcome == "skipped"
        assert fire.reason is not None and fire.reason.startswith("error: ")
        assert "nope" in fire.reason
        assert f.store.runs == {}

    with_fires(tmp_path, body, parameters={"nope": 1})


def test_an_overlapping_fire_is_skipped_and_says_so(tmp_path: Path) -> None:
    first, second = NOW - timedelta(seconds=30), NOW - timedelta(seconds=5)

    async def body(f: Fires) -> None:
        await f.handler.handle_due("s", [first])
        await f.handler.handle_due("s", [second])
        started, skipped = f.fires()
        assert (started.nominal_time, started.outcome) == (first, "started")
        assert (skipped.nominal_time, skipped.outcome, skipped.reason) == (
            second,
            "skipped",
            "overlap",
        )
        assert len(f.store.runs) == 1

    with_fires(tmp_path, body, concurrency="forbid")


# -- catch-up of late times ------------------------------------------------------------------


def test_catchup_none_records_every_late_time_missed_and_runs_nothing(tmp_path: Path) -> None:
    async def body(f: Fires) -> None:
        await f.handler.handle_due("s", LATE)
        assert [(x.nominal_time, x.outcome, x.reason) for x in f.fires()] == [
            (t, "missed", CATCHUP_REASON) for t in LATE
        ]
        assert f.store.runs == {}

    with_fires(tmp_path, body, catchup="none")


def test_catchup_latest_runs_the_newest_late_time_only(tmp_path: Path) -> None:
    async def body(f: Fires) -> None:
        await f.handler.handle_due("s", LATE)
        assert [(x.nominal_time, x.outcome) for x in f.fires()] == [
            (LATE[0], "missed"),
            (LATE[1], "missed"),
            (LATE[2], "started"),
        ]
        assert len(f.store.runs) == 1

    with_fires(tmp_path, body, catchup="latest")


def test_catchup_all_runs_the_newest_times_one_after_another(tmp_path: Path) -> None:
    async def body(f: Fires) -> None:
        await f.handler.handle_due("s", LATE)
        missed, first, second = f.fires()
        assert (missed.nominal_time, missed.outcome) == (LATE[0], "missed")  # beyond the limit
        assert [(x.nominal_time, x.outcome) for x in (first, second)] == [
            (LATE[1], "started"),
            (LATE[2], "started"),
        ]
        assert first.run_id is not None and second.run_id is not None
        older_id, newer_id = first.run_id, second.run_id
        await until(lambda: (f.world.marks / older_id).exists(), "the older run's step running")
        assert f.store.get_run_detail(newer_id).run.status == "queued"  # waits, not skipped
        f.release_all()
        await until(
            lambda: f.store.get_run_detail(newer_id).run.status == "completed",
            "the newer catch-up run completed after the older one",
        )
        older = f.store.get_run_detail(older_id).run
        newer = f.store.get_run_detail(newer_id).run
        assert older.finished_at is not None and newer.started_at is not None
        assert newer.started_at >= older.finished_at

    with_fires(tmp_path, body, catchup="all", catchup_limit=2, concurrency="forbid")


def test_catch_up_at_start_fires_the_times_since_the_last_recorded_fire(tmp_path: Path) -> None:
    registered, last = NOW - timedelta(hours=6), NOW - timedelta(hours=3)

    async def body(f: Fires) -> None:
        state = ScheduleState("s", "file", registered_at=registered, last_fire_time=last)
        await f.handler.catch_up(f.schedule, state)
        assert [(x.nominal_time, x.outcome) for x in f.fires()] == [
            (NOW - timedelta(hours=2), "missed"),
            (NOW - timedelta(hours=1), "missed"),
            (NOW, "started"),  # hourly from the registration; the newest runs
        ]

    with_fires(tmp_path, body, catchup="latest")


# -- fires a dead daemon had claimed ---------------------------------------------------------


def test_a_claimed_fire_left_by_a_crash_gets_one_recovered_run(tmp_path: Path) -> None:
    async def body(f: Fires) -> None:
        f.store.claim_fire("s", LATE[2])  # claimed, then the daemon died
        assert await f.handler.resume_claimed() == 1
        [fire] = f.fires()
        assert fire.outcome == "started" and fire.run_id is not None
        assert f.store.get_run_detail(fire.run_id).run.recovered is True
        assert await f.handler.resume_claimed() == 0  # nothing claimed is left

    with_fires(tmp_path, body, catchup="latest")


def test_a_claimed_fire_under_catchup_none_is_recorded_missed(tmp_path: Path) -> None:
    async def body(f: Fires) -> None:
        f.store.claim_fire("s", LATE[2])
        assert await f.handler.resume_claimed() == 0
        assert [(x.outcome, x.reason) for x in f.fires()] == [("missed", CATCHUP_REASON)]
        assert f.store.runs == {}

    with_fires(tmp_path, body, catchup="none")
