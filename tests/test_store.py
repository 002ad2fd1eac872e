"""The store's contract, run on every backend (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from scheduler.core.clock import Clock
from scheduler.core.errors import AmbiguousId, NotFound
from scheduler.store import Store
from scheduler.store.records import Metric, Owner

START = datetime(2026, 11, 25, 13, 2, 14, 123456, tzinfo=UTC)
STEPS = [("prep", "Prepare Data", "python_script"), ("train", "Train", "python_script")]


class TickingClock(Clock):
    """Each reading is ``step`` later than the last, so every run gets its own millisecond."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.current = start
        self.step = step

    def now(self) -> datetime:
        self.current += self.step
        return self.current


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def ticking(database_url: str, clock: TickingClock) -> Iterator[Store]:
    store = Store.open(database_url, clock=clock)
    yield store
    store.close()


def new_run(store: Store, pipeline: str = "train", **overrides: object):
    fields: dict = {
        "pipeline": pipeline,
        "content_hash": "sha256:abc",
        "experiment": pipeline,
        "parameters": {"reg_rate": 0.05},
        "trigger": "manual",
        "steps": STEPS,
    }
    fields.update(overrides)
    return store.create_run(**fields)


# -- runs -------------------------------------------------------------------------------------


def test_create_run_records_a_queued_run_with_a_pending_attempt_per_step(store: Store) -> None:
    run = new_run(store, schedule="weekly", trigger="schedule:weekly", version="1")
    detail = store.get_run_detail(run.id)
    assert detail.run == run
    assert (run.status, run.version, run.schedule, run.recovered) == (
        "queued",
        "1",
        "weekly",
        False,
    )
    assert run.parameters == {"reg_rate": 0.05}
    assert [(a.step, a.display_name, a.attempt, a.status) for a in detail.attempts] == [
        ("prep", "Prepare Data", 1, "pending"),
        ("train", "Train", 1, "pending"),
    ]


def test_create_run_is_one_transaction(store: Store) -> None:
    with pytest.raises(IntegrityError):
        new_run(store, steps=[("a", "A", "command"), ("a", "A again", "command")])
    assert store.list_runs() == []


def test_get_run_of_unknown_id_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_run("0000000000000")


def test_start_and_finish_run_record_status_reason_times_and_owner(ticking: Store) -> None:
    run = new_run(ticking)
    owner = Owner(host="worker-1", pid=4242, start_ticks=2**40)
    ticking.start_run(run.id, owner)
    ticking.finish_run(run.id, "failed", "daemon restart")
    got = ticking.get_run(run.id)
    assert (got.status, got.status_reason, got.owner) == ("failed", "daemon restart", owner)
    assert got.created_at < got.started_at < got.finished_at


def test_finish_run_refuses_a_status_that_is_not_final(store: Store) -> None:
    run = new_run(store)
    with pytest.raises(ValueError, match="not a run status"):
        store.finish_run(run.id, "pending")


def test_writes_to_an_unknown_run_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.start_run("0000000000000")
    with pytest.raises(NotFound):
        store.begin_attempt("0000000000000", "prep", 1)


# -- listing ----------------------------------------------------------------------------------


def test_list_runs_returns_newest_first(ticking: Store) -> None:
    ids = [new_run(ticking).id for _ in range(3)]
    assert [run.id for run in ticking.list_runs()] == ids[::-1]


def test_list_runs_filters_by_pipeline(ticking: Store) -> None:
    wanted = new_run(ticking, "score").id
    new_run(ticking, "train")
    assert [run.id for run in ticking.list_runs(pipeline="score")] == [wanted]


def test_list_runs_filters_by_any_of_several_statuses(ticking: Store) -> None:
    queued, running, done = (new_run(ticking).id for _ in range(3))
    ticking.start_run(running)
    ticking.start_run(done)
    ticking.finish_run(done, "completed")
    found = ticking.list_runs(statuses=["queued", "completed"])
    assert [run.id for run in found] == [done, queued]


def test_list_runs_limit_zero_means_all(ticking: Store) -> None:
    for _ in range(25):
        new_run(ticking)
    assert len(ticking.list_runs()) == 20
    assert len(ticking.list_runs(limit=0)) == 25


def test_list_runs_pages_with_before(ticking: Store) -> None:
    ids = [new_run(ticking).id for _ in range(5)][::-1]
    first = ticking.list_runs(limit=2)
    second = ticking.list_runs(limit=2, before=first[-1].id)
    third = ticking.list_runs(limit=2, before=second[-1].id)
    assert [run.id for run in first + second + third] == ids


# -- id prefixes ------------------------------------------------------------------------------


def test_resolve_run_id_accepts_a_unique_prefix_in_any_case(ticking: Store) -> None:
    run = new_run(ticking)
    new_run(ticking)
    assert ticking.resolve_run_id(run.id) == run.id
    assert ticking.resolve_run_id(run.id[:10].upper()) == run.id


def test_resolve_run_id_lists_up_to_five_candidates_when_ambiguous(database_url: str) -> None:
    frozen = TickingClock(step=timedelta(0))  # one millisecond: ids share their first 9 chars
    with Store.open(database_url, clock=frozen) as store:
        ids = sorted((new_run(store).id for _ in range(7)), reverse=True)
        with pytest.raises(AmbiguousId) as raised:
            store.resolve_run_id(ids[0][:9])
    assert raised.value.hint == "candidates: " + ", ".join(ids[:5]) + ", ..."


def test_resolve_run_id_of_no_run_raises_not_found(store: Store) -> None:
    new_run(store)
    with pytest.raises(NotFound):
        store.resolve_run_id("zzzz")
    with pytest.raises(NotFound):
        store.resolve_run_id("not-an-id!")


# -- attempts ---------------------------------------------------------------------------------


def test_retry_adds_an_attempt_row_that_keeps_the_display_name(ticking: Store) -> None:
    run = new_run(ticking)
    ticking.begin_attempt(run.id, "prep", 1, fingerprint="fp", log_path="/l/1", workdir="/w/1")
    ticking.end_attempt(run.id, "prep", 1, status="failed", exit_code=3, reason="exit code 3")
    ticking.begin_attempt(run.id, "prep", 2, fingerprint="fp", log_path="/l/2", workdir="/w/2")
    ticking.end_attempt(run.id, "prep", 2, status="completed", exit_code=0, outputs={"d": "/o"})
    prep = [a for a in ticking.get_run_detail(run.id).attempts if a.step == "prep"]
    assert [(a.attempt, a.status, a.exit_code, a.log_path) for a in prep] == [
        (1, "failed", 3, "/l/1"),
        (2, "completed", 0, "/l/2"),
    ]
    assert prep[1].display_name == "Prepare Data"
    assert prep[1].outputs == {"d": "/o"}
    assert prep[0].status_reason == "exit code 3"


def test_running_attempts_lists_only_running_ones_with_their_process(store: Store) -> None:
    run = new_run(store)
    store.begin_attempt(run.id, "prep", 1)
    store.set_attempt_process(run.id, "prep", 1, pid=100, pgid=100, proc_start_ticks=2**35)
    store.begin_attempt(run.id, "train", 1)
    store.end_attempt(run.id, "train", 1, status="completed", exit_code=0)
    running = store.running_attempts(run.id)
    assert [(a.step, a.pid, a.pgid, a.proc_start_ticks) for a in running] == [
        ("prep", 100, 100, 2**35)
    ]


def test_mark_step_changes_only_the_latest_attempt(store: Store) -> None:
    run = new_run(store)
    store.begin_attempt(run.id, "prep", 1)
    store.end_attempt(run.id, "prep", 1, status="failed", exit_code=1)
    store.begin_attempt(run.id, "prep", 2)
    store.mark_step(run.id, "prep", status="canceled", reason="canceled by user")
    store.mark_step(run.id, "train", status="skipped")
    latest = store.get_run_detail(run.id).latest_attempts()
    assert (latest["prep"].attempt, latest["prep"].status) == (2, "canceled")
    assert latest["prep"].status_reason == "canceled by user"
    assert latest["train"].status == "skipped"
    assert latest["train"].finished_at is not None
    assert store.get_run_detail(run.id).attempts[0].status == "failed"


def test_detail_orders_attempts_by_first_start_with_pending_ones_last(ticking: Store) -> None:
    run = new_run(ticking, steps=[("a", "A", "command"), ("b", "B", "command"), ("c", "C", "sql")])
    ticking.begin_attempt(run.id, "b", 1)
    ticking.begin_attempt(run.id, "a", 1)
    order = [a.step for a in ticking.get_run_detail(run.id).attempts]
    assert order == ["b", "a", "c"]


# -- reuse ------------------------------------------------------------------------------------


def test_find_reusable_returns_the_newest_completed_attempt(ticking: Store) -> None:
    older, newer = new_run(ticking), new_run(ticking)
    for run in (older, newer):
        ticking.begin_attempt(run.id, "prep", 1, fingerprint="fp")
        ticking.end_attempt(run.id, "prep", 1, status="completed", outputs={"d": run.id})
    found = ticking.find_reusable("fp")
    assert found is not None
    assert (found.run_id, found.step, found.outputs) == (newer.id, "prep", {"d": newer.id})


def test_find_reusable_ignores_failed_attempts(store: Store) -> None:
    run = new_run(store)
    store.begin_attempt(run.id, "prep", 1, fingerprint="fp")
    store.end_attempt(run.id, "prep", 1, status="failed", exit_code=1)
    assert store.find_reusable("fp") is None


def test_record_reuse_marks_the_step_reused_with_its_source(store: Store) -> None:
    source = new_run(store)
    run = new_run(store)
    store.record_reuse(run.id, "prep", reused_from=source.id, fingerprint="fp", outputs={"d": "/o"})
    prep = store.get_run_detail(run.id).latest_attempts()["prep"]
    assert (prep.status, prep.reused_from, prep.fingerprint, prep.outputs) == (
        "reused",
        source.id,
        "fp",
        {"d": "/o"},
    )
    assert prep.started_at == prep.finished_at is not None


# -- metrics and times ------------------------------------------------------------------------


def test_metrics_of_every_kind_round_trip_in_time_order(store: Store) -> None:
    run = new_run(store)
    metrics = [
        Metric("train", 1, "accuracy", "scalar", 0.93, START + timedelta(seconds=2)),
        Metric("train", 1, "losses", "list", [0.5, 0.25, None], START),
        Metric("train", 1, "table", "row", {"epoch": 1, "loss": 0.5}, START + timedelta(seconds=1)),
        Metric("prep", 1, "plot", "image", {"path": "/outputs/plot.png"}, START),
        Metric("train", 2, "note", "scalar", "text ✓", START + timedelta(seconds=3)),
    ]
    store.add_metrics(run.id, metrics)
    got = store.get_run_detail(run.id).metrics
    assert got == sorted(metrics, key=lambda m: m.logged_at)


def test_non_finite_metrics_are_kept_as_strings_on_every_backend(store: Store) -> None:
    run = new_run(store)
    store.add_metrics(
        run.id,
        [
            Metric("train", 1, "loss", "scalar", float("nan"), START),
            Metric("train", 1, "curve", "list", [1.0, float("inf"), float("-inf")], START),
        ],
    )
    values = [m.value for m in store.get_run_detail(run.id).metrics]
    assert values == ["NaN", [1.0, "Infinity", "-Infinity"]]


def test_metrics_refuse_an_unknown_kind(store: Store) -> None:
    run = new_run(store)
    with pytest.raises(ValueError, match="not a metric kind"):
        store.add_metrics(run.id, [Metric("prep", 1, "x", "histogram", 1, START)])


def test_times_round_trip_as_aware_utc_with_microseconds(database_url: str) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2026, 3, 29, 7, 30, 0, 654321, tzinfo=india)
    frozen = TickingClock(start=moment, step=timedelta(0))
    with Store.open(database_url, clock=frozen) as store:
        run = new_run(store)
        store.start_run(run.id)
        got = store.get_run(run.id)
    assert run.created_at.tzinfo == UTC
    assert got.created_at == got.started_at == moment
    assert got.created_at.tzinfo == UTC
    assert got.created_at.microsecond == 654321


def test_naive_times_are_refused(store: Store) -> None:
    run = new_run(store)
    naive = Metric("prep", 1, "x", "scalar", 1, datetime(2026, 1, 1))
    with pytest.raises(Exception, match="naive datetime"):
        store.add_metrics(run.id, [naive])


def test_records_survive_closing_and_reopening(database_url: str) -> None:
    with Store.open(database_url) as store:
        run_id = new_run(store).id
    with Store.open(database_url) as store:
        assert store.get_run(run_id).id == run_id


# -- pipeline versions ------------------------------------------------------------------------


def test_ensure_pipeline_version_records_each_snapshot_once(store: Store) -> None:
    working = store.ensure_pipeline_version("train", "h1", {"steps": {}})
    assert store.ensure_pipeline_version("train", "h1", {"steps": {}}) == working
    published = store.ensure_pipeline_version("train", "h1", {"steps": {}}, version="1")
    assert published != working
    assert store.ensure_pipeline_version("train", "h1", {}, version="1") == published
    assert store.ensure_pipeline_version("train", "h2", {}) not in (working, published)
    run = new_run(store, pipeline_version_id=published, version="1")
    assert store.get_run(run.id).version == "1"
