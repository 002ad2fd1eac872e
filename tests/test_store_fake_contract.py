"""One contract, two stores: every assertion here runs against a real SQLite store (a file in
``tmp_path``) and against ``tests.store_fake.InMemoryStore``, so the fake that the dispatcher,
fire and recovery unit tests use cannot drift from the store it stands in for. It covers the
methods of the Protocols the fake implements: DispatchStore (with ExecutorStore), FireStore,
RecoveryStore and FileLedgerStore."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler.core.clock import Clock
from scheduler.core.errors import NotFound
from scheduler.store import Store
from scheduler.store.records import FileKey, Metric, Owner, RunRecord, RunStatus
from tests.store_fake import InMemoryStore

START = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
STEPS = [("prep", "Prepare Data", "python_script"), ("train", "Train", "command")]
NOMINAL = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class TickingClock(Clock):
    """Each reading one second after the last: every event has its own time."""

    def __init__(self) -> None:
        self.current = START

    def now(self) -> datetime:
        self.current += timedelta(seconds=1)
        return self.current


@pytest.fixture(params=["sqlite", "fake"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The real store on a SQLite file, or the in-memory fake; both with a ticking clock."""
    if request.param == "fake":
        yield InMemoryStore(clock=TickingClock())
        return
    real = Store.open(f"sqlite:///{tmp_path}/pipesched.db", clock=TickingClock())
    yield real
    real.close()


def new_run(store: Any, **overrides: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "pipeline": "train",
        "content_hash": "sha256:abc",
        "experiment": "exp",
        "parameters": {"rate": 0.5},
        "trigger": "manual",
        "steps": STEPS,
    }
    fields.update(overrides)
    run: RunRecord = store.create_run(**fields)
    return run


def statuses(store: Any, run_id: str) -> list[tuple[str, int, str]]:
    return [(a.step, a.attempt, a.status) for a in store.get_run_detail(run_id).attempts]


# -- DispatchStore: recording runs ------------------------------------------------------------


def test_a_new_run_is_queued_with_a_pending_first_attempt_per_step(store: Any) -> None:
    version_id = store.ensure_pipeline_version("train", "sha256:abc", {"steps": {}})
    assert store.ensure_pipeline_version("train", "sha256:abc", {"steps": {}}) == version_id
    assert store.ensure_pipeline_version("train", "sha256:def", {"steps": {}}) != version_id
    run = new_run(store, schedule="nightly", pipeline_version_id=version_id, version="1")
    assert (run.status, run.schedule, run.version, run.recovered) == (
        "queued",
        "nightly",
        "1",
        False,
    )
    assert isinstance(run.status, RunStatus)  # a StrEnum, equal to its plain string
    detail = store.get_run_detail(run.id)
    assert detail.run.parameters == {"rate": 0.5}
    assert [(a.step, a.display_name, a.type, a.attempt, a.status) for a in detail.attempts] == [
        ("prep", "Prepare Data", "python_script", 1, "pending"),
        ("train", "Train", "command", 1, "pending"),
    ]
    assert json.loads(json.dumps(detail.to_json()))["status"] == "queued"
    assert [r.id for r in store.open_runs()] == [run.id]


def test_a_pregenerated_run_id_is_kept(store: Any) -> None:
    assert new_run(store, run_id="01kaxq4m7b3fz").id == "01kaxq4m7b3fz"


def test_a_run_for_a_claimed_fire_settles_it_started(store: Any) -> None:
    assert store.claim_fire("nightly", NOMINAL) is True
    assert [f.nominal_time for f in store.fires_with_outcome("claimed")] == [NOMINAL]
    run = new_run(store, schedule="nightly", fire=("nightly", NOMINAL))
    assert store.fires_with_outcome("claimed") == []
    [started] = store.fires_with_outcome("started")
    assert (started.schedule, started.nominal_time, started.run_id) == ("nightly", NOMINAL, run.id)


def test_closing_an_unstarted_run_marks_its_steps_and_the_run_canceled(store: Any) -> None:
    run = new_run(store)
    for step in store.get_run_detail(run.id).latest_attempts():
        store.mark_step(run.id, step, status="canceled", reason="replaced")
    store.finish_run(run.id, "canceled", "replaced")
    detail = store.get_run_detail(run.id)
    assert (detail.run.status, detail.run.status_reason) == ("canceled", "replaced")
    assert detail.run.finished_at is not None
    assert [(a.step, a.status, a.status_reason) for a in detail.attempts] == [
        ("prep", "canceled", "replaced"),
        ("train", "canceled", "replaced"),
    ]
    assert store.open_runs() == []


def test_mark_recovered_flags_the_run(store: Any) -> None:
    run = new_run(store)
    store.mark_recovered(run.id)
    assert store.get_run_detail(run.id).run.recovered is True


# -- ExecutorStore: a run's progress ----------------------------------------------------------


def test_a_run_goes_running_then_finished_with_its_owner(store: Any) -> None:
    run = new_run(store)
    owner = Owner("host-a", 4242, 99)
    store.start_run(run.id, owner)
    started = store.get_run_detail(run.id).run
    assert (started.status, started.owner) == ("running", owner)
    assert started.started_at is not None
    assert [r.id for r in store.open_runs()] == [run.id]
    store.finish_run(run.id, "completed")
    assert store.get_run_detail(run.id).run.status == "completed"
    assert store.open_runs() == []


def test_attempts_run_retry_and_end(store: Any) -> None:
    run = new_run(store)
    store.begin_attempt(run.id, "prep", 1, fingerprint="fp1", log_path="/l/1", workdir="/w/1")
    store.set_attempt_process(run.id, "prep", 1, pid=10, pgid=10, proc_start_ticks=5)
    [running] = store.running_attempts(run.id)
    assert (running.step, running.attempt, running.pid, running.pgid) == ("prep", 1, 10, 10)
    assert (running.log_path, running.workdir, running.fingerprint) == ("/l/1", "/w/1", "fp1")
    store.end_attempt(run.id, "prep", 1, status="failed", exit_code=3, reason="exit code 3")
    store.begin_attempt(run.id, "prep", 2)
    store.end_attempt(run.id, "prep", 2, status="completed", exit_code=0, outputs={"o": "/x"})
    assert store.running_attempts(run.id) == []
    detail = store.get_run_detail(run.id)
    assert [(a.step, a.attempt, a.status, a.exit_code) for a in detail.attempts] == [
        ("prep", 1, "failed", 3),
        ("prep", 2, "completed", 0),
        ("train", 1, "pending", None),
    ]
    assert detail.attempts[1].display_name == "Prepare Data"  # a retry copies the step's name
    assert detail.latest_attempts()["prep"].outputs == {"o": "/x"}


def test_mark_step_changes_the_latest_attempt_only(store: Any) -> None:
    run = new_run(store)
    store.begin_attempt(run.id, "prep", 1)
    store.end_attempt(run.id, "prep", 1, status="failed")
    store.begin_attempt(run.id, "prep", 2)
    store.mark_step(run.id, "prep", status="canceled", reason="canceled by user")
    assert statuses(store, run.id)[:2] == [("prep", 1, "failed"), ("prep", 2, "canceled")]


def test_reuse_finds_the_newest_completed_attempt_of_a_fingerprint(store: Any) -> None:
    assert store.find_reusable("fp") is None
    first, second = new_run(store), new_run(store)
    for run in (first, second):
        store.begin_attempt(run.id, "prep", 1, fingerprint="fp")
        store.end_attempt(run.id, "prep", 1, status="completed", outputs={"o": run.id})
    found = store.find_reusable("fp")
    assert (found.run_id, found.outputs) == (second.id, {"o": second.id})
    third = new_run(store)
    store.record_reuse(
        third.id, "prep", reused_from=second.id, fingerprint="fp", outputs={"o": "x"}
    )
    reused = store.get_run_detail(third.id).latest_attempts()["prep"]
    assert (reused.status, reused.reused_from, reused.outputs) == ("reused", second.id, {"o": "x"})
    assert store.find_reusable("fp").run_id == second.id  # reused is not completed


def test_metrics_are_kept_in_logging_order(store: Any) -> None:
    run = new_run(store)
    store.add_metrics(run.id, [])
    store.add_metrics(
        run.id,
        [
            Metric("train", 1, "loss", "scalar", 0.5, START),
            Metric("train", 1, "loss", "scalar", 0.25, START + timedelta(seconds=1)),
        ],
    )
    detail = store.get_run_detail(run.id)
    assert [(m.name, m.value) for m in detail.metrics] == [("loss", 0.5), ("loss", 0.25)]
    with pytest.raises(ValueError, match="metric kind"):
        store.add_metrics(run.id, [Metric("train", 1, "x", "histogram", 1, START)])


def test_bad_statuses_and_unknown_runs_are_refused(store: Any) -> None:
    run = new_run(store)
    with pytest.raises(ValueError, match="run status"):
        store.finish_run(run.id, "running")
    with pytest.raises(ValueError, match="step status"):
        store.end_attempt(run.id, "prep", 1, status="pending")
    with pytest.raises(ValueError, match="step status"):
        store.mark_step(run.id, "prep", status="done")
    with pytest.raises(NotFound):
        store.get_run_detail("0000000000000")
    with pytest.raises(NotFound):
        store.finish_run("0000000000000", "failed")
    with pytest.raises(NotFound):
        store.end_attempt(run.id, "nope", 1, status="failed")


# -- FireStore ---------------------------------------------------------------------------------


def test_a_fire_is_claimed_once(store: Any) -> None:
    assert store.claim_fire("nightly", NOMINAL) is True
    assert store.claim_fire("nightly", NOMINAL) is False
    assert store.claim_fire("other", NOMINAL) is True
    assert len(store.fires_with_outcome("claimed")) == 2


def test_missed_fires_are_recorded_once_each(store: Any) -> None:
    times = [NOMINAL + timedelta(hours=h) for h in range(3)]
    assert store.record_fires("nightly", times[:2], outcome="missed", reason="catch-up") == 2
    assert store.record_fires("nightly", times, outcome="missed", reason="catch-up") == 1
    assert store.record_fires("nightly", [], outcome="missed", reason=None) == 0
    missed = store.fires_with_outcome("missed")
    assert sorted(f.nominal_time for f in missed) == times
    assert {f.reason for f in missed} == {"catch-up"}


def test_a_fire_outcome_is_updated_and_outcomes_are_checked(store: Any) -> None:
    store.claim_fire("nightly", NOMINAL)
    store.update_fire("nightly", NOMINAL, outcome="skipped", reason="overlap")
    [skipped] = store.fires_with_outcome("skipped")
    assert (skipped.reason, skipped.run_id, skipped.path) == ("overlap", None, None)
    assert json.loads(json.dumps(skipped.to_json()))["outcome"] == "skipped"
    with pytest.raises(ValueError, match="fire outcome"):
        store.update_fire("nightly", NOMINAL, outcome="done")
    with pytest.raises(ValueError, match="fire outcome"):
        store.claim_fire("nightly", NOMINAL + timedelta(hours=1), outcome="done")


# -- FileLedgerStore ---------------------------------------------------------------------------

A, B, C = FileKey("in/a.csv", 1, 10), FileKey("in/b.csv", 2, 20), FileKey("in/c.csv", 3, 30)


def test_a_file_is_claimed_once_per_size_and_mtime(store: Any) -> None:
    assert store.claim_files("drops", [A, B, A]) == [A, B]
    changed = FileKey("in/a.csv", 5, 11)
    assert store.claim_files("drops", [A, changed]) == [changed]
    assert store.claim_files("other", [A]) == [A]
    assert store.claimed_files("drops") == [A, B, changed]
    assert store.known_files("drops", [A, C, changed]) == {A, changed}
    assert store.known_files("drops", []) == set()


def test_a_run_settles_its_file_claims_and_a_refusal_marks_them(store: Any) -> None:
    store.claim_files("drops", [A, B, C])
    assert store.last_file("drops") is None
    run = new_run(
        store,
        schedule="drops",
        file_fires=[("drops", A.path, A.size, A.mtime_ns), ("drops", B.path, B.size, B.mtime_ns)],
    )
    assert store.claimed_files("drops") == [C]
    assert store.last_file("drops") in (A.path, B.path)
    store.mark_files("drops", [C], outcome="skipped", reason="bad parameters")
    assert store.claimed_files("drops") == []
    ledger = {f.path: (f.outcome, f.run_id, f.reason) for f in store.list_file_fires("drops")}
    assert ledger == {
        A.path: ("started", run.id, None),
        B.path: ("started", run.id, None),
        C.path: ("skipped", None, "bad parameters"),
    }
    assert store.known_files("drops", [A, B, C]) == {A, B, C}  # every outcome counts as known


# -- RecoveryStore -----------------------------------------------------------------------------


def test_open_runs_are_queued_or_running_oldest_first(store: Any) -> None:
    queued, running, done = new_run(store), new_run(store), new_run(store)
    store.start_run(running.id)
    store.start_run(done.id)
    store.finish_run(done.id, "failed", "exit code 1")
    assert [(r.id, r.status) for r in store.open_runs()] == [
        (queued.id, "queued"),
        (running.id, "running"),
    ]


# -- the listings the unit tests assert with --------------------------------------------------


def test_fires_and_file_fires_are_listed_with_limits(store: Any) -> None:
    times = [NOMINAL + timedelta(hours=h) for h in range(3)]
    for nominal in times:
        store.claim_fire("nightly", nominal)
    store.claim_fire("other", NOMINAL)
    assert [f.nominal_time for f in store.list_fires("nightly", limit=0)] == times[::-1]
    assert [f.nominal_time for f in store.list_fires("nightly", limit=2)] == times[:0:-1]
    assert [f.schedule for f in store.list_fires()] == ["other", "nightly", "nightly", "nightly"]
    store.claim_files("drops", [A, B, C])
    assert [f.key for f in store.list_file_fires("drops")] == [A, B, C]
    assert [f.key for f in store.list_file_fires("drops", limit=2)] == [A, B]
