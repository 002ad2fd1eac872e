"""Retention: which runs a prune deletes, what goes with them, and what must stay."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from scheduler.api.metrics import make_registry
from scheduler.core.ids import new_run_id
from scheduler.daemon.pruning import prune_once
from scheduler.services.retention import LEFTOVER_GRACE_SECONDS, prune, state_bytes
from scheduler.store import Store
from scheduler.store.records import FileKey
from tests.projects import Project, make_project
from tests.retention_world import NIGHTLY, ManualClock, night, run_night

STEPS = [("s", "s", "command")]


def nightly_project(tmp_path: Path, database_url: str | None = None, **retention) -> Project:
    project = make_project(tmp_path / "p", database_url=database_url, retention=retention)
    project.pipeline("nightly", NIGHTLY)
    project.pipeline("other", NIGHTLY)
    return project


def open_store(project: Project, clock: ManualClock) -> Store:
    return Store.open(project.config().database_url, clock=clock)


def run_ids(store: Store) -> set[str]:
    return {run.id for run in store.list_runs(limit=0)}


def record_finished(store: Store, pipeline: str = "p", status: str = "completed", **kwargs) -> str:
    run = store.create_run(
        pipeline=pipeline,
        content_hash="h",
        experiment=pipeline,
        parameters={},
        trigger="manual",
        steps=STEPS,
        **kwargs,
    )
    if status != "queued":
        store.start_run(run.id)
    if status not in ("queued", "running"):
        store.finish_run(run.id, status)
    return run.id


def test_old_runs_go_with_their_folders_and_kept_runs_keep_theirs_and_what_they_reused(
    tmp_path: Path,
):
    project = nightly_project(tmp_path, runs="2d", keep_last=3)
    clock = ManualClock()
    with open_store(project, clock) as store:
        nights = {day: run_night(project, store, clock, day) for day in range(8)}
        run_night(project, store, clock, 0, pipeline="other")  # its pipeline's only run
        clock.at = night(7)
        first = nights[0]
        origin = first.latest_attempts()["prepare"]
        assert nights[7].latest_attempts()["prepare"].reused_from == first.run.id

        report = prune(project.config(), store, clock)

        kept = run_ids(store)
        # Nights 5-7 are inside the window; night 0 did the work nights 1-7 reused; "other"
        # keeps its newest run whatever its age.
        expected = {nights[d].run.id for d in (0, 5, 6, 7)}
        assert kept - expected == {store.list_runs(pipeline="other", limit=0)[0].id}
        assert report.runs_by_pipeline == {"nightly": 4}
        assert report.bytes_by_kind["runs"] > 0 and report.bytes_by_kind["outputs"] > 0
        for day in (1, 2, 3, 4):
            gone = nights[day].run.id
            assert not (project.state_dir / "runs" / gone).exists()
            assert not (project.datastore / ".pipesched" / "outputs" / gone).exists()
            assert gone not in kept
        for day in (0, 5, 6, 7):
            for attempt in nights[day].attempts:
                if attempt.log_path is not None:
                    assert Path(attempt.log_path).exists(), (day, attempt.step)
        assert all(Path(p).exists() for p in origin.outputs.values())


def test_live_runs_and_runs_that_registered_a_model_are_never_pruned(database_url: str):
    clock = ManualClock()
    with Store.open(database_url, clock=clock) as store:
        queued = record_finished(store, status="queued")
        running = record_finished(store, status="running")
        with_model = record_finished(store)
        store.add_model("churn", 1, "churn/1", run_id=with_model, step="s")
        finished = record_finished(store, status="failed")
        clock.at = night(100)
        protected = store.protected_runs(0, new_run_id(night(99)), clock.now())
        page, cursor = store.prunable_page(protected)
        assert [run.id for run in page] == [finished] and cursor is None
        deleted = store.delete_runs([run.id for run in page], protected)
        assert deleted.run_ids == [finished]
        assert {r.id for r in store.list_runs(limit=0)} == {queued, running, with_model}


def test_a_run_reused_from_while_the_prune_runs_stays(database_url: str):
    """The page was read before a live run reused the old run's outputs: the delete, in its
    own transaction, sees the new reference and keeps the old run."""
    clock = ManualClock()
    with Store.open(database_url, clock=clock) as store:
        old = record_finished(store)
        other_old = record_finished(store)
        clock.at = night(100)
        live = record_finished(store, status="running")
        protected = store.protected_runs(0, new_run_id(night(99)), clock.now())
        page, _ = store.prunable_page(protected)
        assert {run.id for run in page} == {old, other_old}
        store.record_reuse(live, "s", reused_from=old, fingerprint="f", outputs={})
        deleted = store.delete_runs([run.id for run in page], protected)
        assert deleted.run_ids == [other_old]
        assert {r.id for r in store.list_runs(limit=0)} == {old, live}


def test_a_handled_file_still_in_its_folder_keeps_its_ledger_row(tmp_path: Path):
    project = nightly_project(tmp_path, runs="1d", keep_last=0)
    inbox = project.datastore / "inbox"
    inbox.mkdir(parents=True)
    kept_file, gone_file = inbox / "kept.csv", inbox / "gone.csv"
    kept_file.write_text("k")
    gone_file.write_text("g")
    keys = {}
    for path in (kept_file, gone_file):
        info = path.stat()
        keys[path.name] = FileKey(f"inbox/{path.name}", info.st_size, info.st_mtime_ns)
    clock = ManualClock()
    with open_store(project, clock) as store:
        assert store.claim_files("drops", list(keys.values()))
        for key in keys.values():
            record_finished(store, file_fires=[("drops", key.path, key.size, key.mtime_ns)])
        gone_file.unlink()
        clock.at = night(3)

        report = prune(project.config(), store, clock)

        assert report.runs == 2 and report.ledger_rows_kept == 1
        assert run_ids(store) == set()
        ledger = store.list_file_fires("drops")
        assert [(row.path, row.run_id) for row in ledger] == [("inbox/kept.csv", None)]
        # The file is known: a rescan after a restart does not claim (and run) it again.
        assert store.claim_files("drops", [keys["kept.csv"]]) == []


def test_batch_folder_links_go_and_the_files_they_point_at_stay(tmp_path: Path):
    project = nightly_project(tmp_path, runs="1d", keep_last=0)
    clock = ManualClock()
    users = project.datastore / "inbox"
    (users / "folder").mkdir(parents=True)
    (users / "a.csv").write_text("a")
    (users / "folder" / "b.csv").write_text("b")
    with open_store(project, clock) as store:
        run = record_finished(store)
        batch = project.datastore / ".pipesched" / "batches" / run
        batch.mkdir(parents=True)
        (batch / "a.csv").symlink_to(users / "a.csv")
        (batch / "folder").symlink_to(users / "folder", target_is_directory=True)
        clock.at = night(3)
        report = prune(project.config(), store, clock)
    assert report.runs == 1
    assert not batch.exists()
    assert (users / "a.csv").read_text() == "a"
    assert (users / "folder" / "b.csv").read_text() == "b"


def test_dry_run_deletes_nothing_and_names_what_prune_then_deletes(tmp_path: Path):
    project = nightly_project(tmp_path, runs="2d", keep_last=2)
    clock = ManualClock()
    with open_store(project, clock) as store:
        for day in range(6):
            run_night(project, store, clock, day)
        before, state_before = run_ids(store), state_bytes(project.config())

        planned = prune(project.config(), store, clock, dry_run=True)

        assert run_ids(store) == before
        assert state_bytes(project.config()) == state_before
        done = prune(project.config(), store, clock)
    assert planned.runs == done.runs == 2  # nights 1 and 2; night 0 is reused from
    assert planned.runs_by_pipeline == done.runs_by_pipeline
    assert planned.bytes_by_kind == done.bytes_by_kind


def test_past_the_size_limit_the_oldest_further_runs_go(tmp_path: Path):
    project = nightly_project(tmp_path, runs=None, keep_last=2)
    clock = ManualClock()
    with open_store(project, clock) as store:
        nights = [run_night(project, store, clock, day) for day in range(6)]
        config = project.config()
        total = sum(state_bytes(config).values())
        # Room for a bit more than half of it: the oldest runs go until the state fits.
        limited = make_project(project.root, retention={"runs": None, "keep_last": 2,
                                                        "max_state_bytes": total * 6 // 10})  # fmt: skip
        limited.pipeline("nightly", NIGHTLY)
        report = prune(limited.config(), store, clock)
        assert report.runs >= 1
        assert sum(state_bytes(config).values()) <= total * 6 // 10
        kept = run_ids(store)
        assert nights[0].run.id in kept  # reused from by the kept runs
        assert {nights[4].run.id, nights[5].run.id} <= kept
        gone = sorted({n.run.id for n in nights} - kept)
        assert gone == sorted(n.run.id for n in nights[1 : 1 + len(gone)])  # oldest first


def test_leftover_folders_of_runs_gone_are_swept_once_old(tmp_path: Path):
    project = nightly_project(tmp_path, runs="1d", keep_last=0)
    runs_dir = project.state_dir / "runs"
    old_left, new_left = new_run_id(night(0)), new_run_id(night(1))
    for run_id in (old_left, new_left):
        (runs_dir / run_id / "s").mkdir(parents=True)
        (runs_dir / run_id / "s" / "1.log").write_text("log")
    long_ago = time.time() - LEFTOVER_GRACE_SECONDS - 60
    os.utime(runs_dir / old_left, (long_ago, long_ago))
    (runs_dir / "not-a-run").mkdir()
    clock = ManualClock(night(0) + timedelta(days=5))
    with open_store(project, clock) as store:
        report = prune(project.config(), store, clock)
    assert report.leftover_folders == 1
    assert not (runs_dir / old_left).exists()
    assert (runs_dir / new_left).exists()  # may belong to a run about to be recorded
    assert (runs_dir / "not-a-run").exists()


def test_the_counters_of_metrics_do_not_go_down_when_runs_and_fires_are_pruned(
    database_url: str,
):
    """Prometheus reads a counter that went down as a reset: what a prune deletes is tallied."""
    clock = ManualClock()
    with Store.open(database_url, clock=clock) as store:
        for _ in range(3):
            store.claim_fire("nightly", clock.now())
            record_finished(store, fire=("nightly", clock.now()))
            clock.at += timedelta(hours=1)
        record_finished(store, status="failed")
        store.record_fires("nightly", [night(-5)], outcome="missed", reason="late")
        registry = make_registry(store)
        before = scrape_counters(registry)
        clock.at = night(10)
        protected = store.protected_runs(1, new_run_id(night(9)), clock.now())
        page, _ = store.prunable_page(protected)
        assert len(store.delete_runs([run.id for run in page], protected).run_ids) == 3
        assert store.delete_old_fires(night(9)) == 1
        assert len(store.list_runs(limit=0)) == 1
        assert scrape_counters(registry) == before
    assert before == {
        ("pipesched_runs_finished_total", "completed"): 3,
        ("pipesched_runs_finished_total", "failed"): 1,
        ("pipesched_fires_total", "started"): 3,
        ("pipesched_fires_total", "missed"): 1,
    }


def scrape_counters(registry) -> dict[tuple[str, str], float]:
    """Each counter sample by name and status (runs) or outcome (fires)."""
    found = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in ("pipesched_runs_finished_total", "pipesched_fires_total"):
                label = sample.labels.get("status") or sample.labels["outcome"]
                found[(sample.name, label)] = sample.value
    return found


def test_a_prune_that_fails_on_the_store_is_logged_and_the_daemon_goes_on(tmp_path: Path):
    project = nightly_project(tmp_path, runs="1d", keep_last=0)
    clock = ManualClock()
    with open_store(project, clock) as store:
        old = record_finished(store)
        clock.at = night(3)
        store.fence("the disk is full")
        with capture_logs() as logs:
            asyncio.run(prune_once(project.config(), store, clock))  # returns, never raises
        assert [entry["event"] for entry in logs] == ["prune_failed"]
        assert "the disk is full" in logs[0]["error"]
        store.unfence()
        with capture_logs() as logs:
            asyncio.run(prune_once(project.config(), store, clock))
        assert [(entry["event"], entry["runs"]) for entry in logs] == [("prune_done", 1)]
        assert old not in run_ids(store)


def test_the_size_limit_keeps_what_the_runs_it_leaves_reused(tmp_path: Path):
    project = nightly_project(tmp_path, runs=None, keep_last=0, max_state_bytes=1)
    clock = ManualClock()
    with open_store(project, clock) as store:
        nights = [run_night(project, store, clock, day) for day in range(3)]
        report = prune(project.config(), store, clock)
        # Everything but night 0 goes; night 0 stays while a run that reused it is left,
        # and goes at the next prune, once none is.
        assert report.runs == 2 and run_ids(store) == {nights[0].run.id}
        assert prune(project.config(), store, clock).runs == 1
        assert run_ids(store) == set()


@pytest.mark.parametrize("keep_last", [0, 1])
def test_with_no_age_limit_and_no_size_limit_nothing_goes(tmp_path: Path, keep_last: int):
    project = nightly_project(tmp_path, runs=None, keep_last=keep_last)
    clock = ManualClock()
    with open_store(project, clock) as store:
        record_finished(store)
        record_finished(store)
        clock.at = night(1000)
        report = prune(project.config(), store, clock)
        assert report.runs == 0 and len(run_ids(store)) == 2
