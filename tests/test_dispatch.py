"""The Dispatcher without a daemon: concurrency policies and ``max_concurrent_runs``.

The dispatcher records runs in ``tests.store_fake.InMemoryStore`` (the fake also serves the
run executor it starts) and runs a real one-step pipeline whose step process marks that it
started, then waits until the test releases it. Nothing sleeps for a fixed time: each wait
is on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduler.dispatch.dispatcher import Dispatcher, Outcome, RunRequest
from tests.projects import Project, make_project
from tests.store_fake import InMemoryStore

# The step: mark "started" under <marks>/<run id>, then wait for <gates>/<run id> (or a
# "release-all" file) to appear, then exit 0. Waiting is the step's job, not the test's.
GATE = """
import os, pathlib, sys, time
marks, gates, run_id = map(pathlib.Path, sys.argv[1:4])
(marks / run_id.name).write_text(str(os.getpid()))
while not (gates / run_id.name).exists() and not (gates / "release-all").exists():
    time.sleep(0.01)
"""
NOMINAL = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DEADLINE = 20.0


class World:
    """A project with the gated pipeline, a fake store, and a dispatcher over both."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.project: Project = make_project(tmp_path, **settings)
        self.marks, self.gates = tmp_path / "marks", tmp_path / "gates"
        self.marks.mkdir()
        self.gates.mkdir()
        self.project.pipeline(
            "gated",
            f"""
            steps:
              wait:
                type: python_script
                script: gate.py
                arguments: ["{self.marks}", "{self.gates}", "${{{{run.id}}}}"]
                allow_reuse: false
            """,
            {"gate.py": GATE},
        )
        self.pipeline = self.project.load("gated")
        self.store = InMemoryStore()
        self.dispatcher = Dispatcher(self.project.config(), self.store, kill_grace=1.0)

    @property
    def finished(self) -> list[tuple[str, str]]:
        """(run id, status) of every run that has ended, in the order they ended."""
        ended = [r.record for r in self.store.runs.values() if r.record.finished_at is not None]
        ended.sort(key=lambda record: record.finished_at or NOMINAL)
        return [(record.id, str(record.status)) for record in ended]

    def request(
        self, schedule: str = "s", policy: str = "allow", fire: int | None = None
    ) -> RunRequest:
        nominal = NOMINAL + timedelta(minutes=fire) if fire is not None else None
        if nominal is not None:
            assert self.store.claim_fire(schedule, nominal)  # the fire handler claims first
        return RunRequest(
            pipeline=self.pipeline,
            trigger=f"schedule:{schedule}",
            schedule=schedule,
            concurrency=policy,
            fire=(schedule, nominal) if nominal is not None else None,
        )

    def started(self, outcome: Outcome) -> bool:
        return outcome.run is not None and (self.marks / outcome.run.id).exists()

    def release(self, outcome: Outcome) -> None:
        assert outcome.run is not None
        (self.gates / outcome.run.id).write_text("")

    def status(self, outcome: Outcome) -> tuple[str, str | None]:
        assert outcome.run is not None
        run = self.store.get_run_detail(outcome.run.id).run
        return str(run.status), run.status_reason

    async def close(self) -> None:
        (self.gates / "release-all").write_text("")
        await self.dispatcher.shutdown(grace=DEADLINE)


async def until(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    """Yield to the loop until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout}s: {what}")
        await asyncio.sleep(0.01)


def run_world(tmp_path: Path, body: Callable[[World], Awaitable[None]], **settings: Any) -> World:
    world = World(tmp_path, **settings)

    async def main() -> None:
        try:
            await body(world)
        finally:
            await world.close()

    asyncio.run(main())
    return world


def test_allow_starts_a_second_run_beside_the_first(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        first = await world.dispatcher.submit(world.request(policy="allow"))
        second = await world.dispatcher.submit(world.request(policy="allow"))
        assert (first.outcome, second.outcome) == ("started", "started")
        await until(lambda: world.started(first) and world.started(second), "both steps running")
        assert world.status(first) == world.status(second) == ("running", None)
        world.release(first)
        world.release(second)
        await until(lambda: len(world.finished) == 2, "both runs finished")
        assert world.status(first) == world.status(second) == ("completed", None)

    run_world(tmp_path, body)


def test_forbid_skips_an_overlapping_fire_and_records_why(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        first = await world.dispatcher.submit(world.request(policy="forbid", fire=0))
        await until(lambda: world.started(first), "first step running")
        second = await world.dispatcher.submit(world.request(policy="forbid", fire=5))
        assert (second.outcome, second.reason, second.run) == ("skipped", "overlap", None)
        fires = {f.nominal_time: f for f in world.store.list_fires("s")}
        started, skipped = fires[NOMINAL], fires[NOMINAL + timedelta(minutes=5)]
        assert first.run is not None
        assert (started.outcome, started.run_id) == ("started", first.run.id)
        assert (skipped.outcome, skipped.reason, skipped.run_id) == ("skipped", "overlap", None)
        assert len(world.store.runs) == 1  # the skipped fire recorded no run
        world.release(first)
        await until(lambda: world.finished, "first run finished")
        assert world.status(first) == ("completed", None)

    run_world(tmp_path, body)


def test_forbid_does_not_hold_back_another_schedule(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        first = await world.dispatcher.submit(world.request("a", policy="forbid"))
        other = await world.dispatcher.submit(world.request("b", policy="forbid"))
        assert (first.outcome, other.outcome) == ("started", "started")

    run_world(tmp_path, body)


def test_replace_cancels_the_running_run_then_starts_the_new_one(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        old = await world.dispatcher.submit(world.request(policy="replace"))
        await until(lambda: world.started(old), "old step running")
        new = await world.dispatcher.submit(world.request(policy="replace"))
        assert new.outcome == "started"
        assert world.status(old) == ("canceled", "replaced")
        assert old.run is not None
        [step] = world.store.get_run_detail(old.run.id).attempts
        assert (step.status, step.status_reason) == ("canceled", "replaced")
        await until(lambda: world.started(new), "new step running")
        world.release(new)
        await until(lambda: len(world.finished) == 2, "new run finished")
        assert world.status(new) == ("completed", None)

    run_world(tmp_path, body)


def test_replace_closes_a_run_that_was_still_waiting(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        running = await world.dispatcher.submit(world.request("other"))
        waiting = await world.dispatcher.submit(world.request(policy="replace"))
        assert (running.outcome, waiting.outcome) == ("started", "queued")  # one slot
        new = await world.dispatcher.submit(world.request(policy="replace"))
        assert world.status(waiting) == ("canceled", "replaced")
        assert new.outcome == "queued"
        world.release(running)
        await until(lambda: world.started(new), "new run started in the freed slot")
        assert not world.started(waiting)

    run_world(tmp_path, body, max_concurrent_runs=1)


def test_queue_records_the_run_queued_and_starts_it_after_the_first(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        first = await world.dispatcher.submit(world.request(policy="queue"))
        second = await world.dispatcher.submit(world.request(policy="queue"))
        assert (first.outcome, second.outcome) == ("started", "queued")
        assert world.status(second) == ("queued", None)
        await until(lambda: world.started(first), "first step running")
        assert not world.started(second)
        world.release(first)
        await until(lambda: world.started(second), "second step running after the first")
        assert world.status(first) == ("completed", None)
        world.release(second)
        await until(lambda: len(world.finished) == 2, "second run finished")
        assert first.run is not None and second.run is not None
        done_first = world.store.get_run_detail(first.run.id).run.finished_at
        started_second = world.store.get_run_detail(second.run.id).run.started_at
        assert done_first is not None and started_second is not None
        assert started_second >= done_first

    run_world(tmp_path, body)


def test_max_concurrent_runs_holds_runs_of_any_schedule(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        a = await world.dispatcher.submit(world.request("a"))
        b = await world.dispatcher.submit(world.request("b"))
        c = await world.dispatcher.submit(world.request("c"))
        assert [o.outcome for o in (a, b, c)] == ["started", "started", "queued"]
        assert world.dispatcher.runs_in_flight() == 2
        await until(lambda: world.started(a) and world.started(b), "two steps running")
        assert world.status(c) == ("queued", None)
        world.release(b)
        await until(lambda: world.started(c), "third run started in the freed slot")
        assert world.dispatcher.runs_in_flight() == 2

    run_world(tmp_path, body, max_concurrent_runs=2)


def test_canceling_a_waiting_run_closes_it_and_its_steps(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        await world.dispatcher.submit(world.request("a"))
        waiting = await world.dispatcher.submit(world.request("b"))
        assert waiting.run is not None
        assert world.dispatcher.cancel(waiting.run.id) is True
        # closed on the store's thread, in the order of the calls handed to it
        closed = ("canceled", "canceled by user")
        await until(lambda: world.status(waiting) == closed, "the waiting run closed")
        [step] = world.store.get_run_detail(waiting.run.id).attempts
        assert step.status == "canceled"
        assert world.dispatcher.cancel("0000000000000") is False

    run_world(tmp_path, body, max_concurrent_runs=1)


def test_shutdown_cancels_running_runs_and_leaves_waiting_ones_queued(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        running = await world.dispatcher.submit(world.request("a"))
        waiting = await world.dispatcher.submit(world.request("b"))
        await until(lambda: world.started(running), "step running")
        await world.dispatcher.shutdown(grace=0.0)
        assert world.status(running) == ("canceled", "shutdown")
        assert world.status(waiting) == ("queued", None)
        assert running.run is not None
        assert world.finished == [(running.run.id, "canceled")]

    run_world(tmp_path, body, max_concurrent_runs=1)
