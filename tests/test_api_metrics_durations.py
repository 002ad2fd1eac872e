"""The step duration histogram is cumulative and is brought up to date scrape by scrape, reading
only what it has not settled: each finished attempt counts exactly once, however its start, end
and the scrapes interleave, and attempts still running count once they end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.api.metrics import DURATION_BUCKETS, SETTLE_MARGIN, StepDurations
from scheduler.core.clock import Clock
from scheduler.store import Store


class MovableClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def new_run(store: Store, pipeline: str, steps: list[str]) -> str:
    run = store.create_run(
        pipeline=pipeline,
        content_hash="h",
        experiment=pipeline,
        parameters={},
        trigger="manual",
        steps=[(step, step, "python_script") for step in steps],
    )
    store.start_run(run.id)
    return run.id


def observed(histogram: StepDurations, store: Store) -> dict[str, tuple[float, float, list]]:
    """``{pipeline: (count, sum, cumulative bucket values)}`` from one scrape."""
    family = histogram.collect(store)
    found: dict[str, tuple[float, float, list]] = {}
    for pipeline in {s.labels["pipeline"] for s in family.samples}:
        mine = [s for s in family.samples if s.labels["pipeline"] == pipeline]
        count = next(s.value for s in mine if s.name.endswith("_count"))
        total = next(s.value for s in mine if s.name.endswith("_sum"))
        buckets = [s.value for s in mine if s.name.endswith("_bucket")]
        found[pipeline] = (count, total, buckets)
    return found


def test_each_attempt_counts_once_across_scrapes(database_url: str):
    clock = MovableClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = Store.open(database_url, clock=clock)
    histogram = StepDurations(clock)
    try:
        first = new_run(store, "train", ["a", "b"])
        store.begin_attempt(first, "a", 1)
        assert observed(histogram, store) == {}  # nothing finished yet

        clock.at += timedelta(seconds=2)
        store.end_attempt(first, "a", 1, status="failed", exit_code=1)
        store.begin_attempt(first, "a", 2)  # a retry: a new row, running
        assert observed(histogram, store)["train"][:2] == (1, 2.0)

        clock.at += timedelta(seconds=30)
        store.end_attempt(first, "a", 2, status="completed", exit_code=0)
        store.mark_step(first, "b", status="skipped", reason="not run")  # never ran: not counted
        # Long after: the scrape passes these rows for good and never reads them again.
        clock.at += SETTLE_MARGIN * 2
        assert observed(histogram, store)["train"][:2] == (2, 32.0)
        assert observed(histogram, store)["train"][:2] == (2, 32.0)

        second = new_run(store, "score", ["s"])
        store.begin_attempt(second, "s", 1)
        clock.at += timedelta(seconds=0.25)
        store.end_attempt(second, "s", 1, status="completed", exit_code=0)
        found = observed(histogram, store)
    finally:
        store.close()
    assert found["train"][:2] == (2, 32.0)
    count, total, buckets = found["score"]
    assert (count, total) == (1, 0.25)
    assert buckets == [0.0 if bound < 0.25 else 1.0 for bound in DURATION_BUCKETS]


def test_a_new_collector_reads_the_whole_history(database_url: str):
    """What a restarted daemon shows: the same cumulative figures, read from the store."""
    clock = MovableClock(datetime(2026, 1, 1, tzinfo=UTC))
    store = Store.open(database_url, clock=clock)
    try:
        for seconds in (1, 10, 100):
            run = new_run(store, "train", ["a"])
            store.begin_attempt(run, "a", 1)
            clock.at += timedelta(seconds=seconds)
            store.end_attempt(run, "a", 1, status="completed", exit_code=0)
        before = observed(StepDurations(clock), store)
        clock.at += SETTLE_MARGIN * 2
        after_restart = observed(StepDurations(clock), store)
    finally:
        store.close()
    assert before == after_restart
    assert before["train"][:2] == (3, 111.0)
