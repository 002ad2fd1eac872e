"""File-drop triggers with real observers on real temp folders, a real store and dispatcher."""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.core.clock import Clock
from scheduler.core.loopguard import ENV_VAR as ASSERT_OFF_LOOP
from scheduler.definitions.schedule_loader import build_schedule
from scheduler.dispatch.dispatcher import Outcome, RunRequest
from scheduler.fires.file_events import make_observer
from scheduler.fires.file_watcher import FileWatcher
from tests.conftest import wait_until
from tests.file_drops_harness import (
    ProjectPipelines,
    Service,
    file_drop_project,
    on_change,
    write_slowly,
)


@pytest.fixture
def project(tmp_path: Path):
    return file_drop_project(tmp_path)


@pytest.fixture
def service_for(project):
    made: list[Service] = []

    def start(**spec) -> Service:
        kwargs = spec.pop("service_kwargs", {})
        service = Service(project, on_change(**spec), **kwargs).start()
        made.append(service)
        return service

    yield start
    for service in made:
        service.close()


def inbox(project) -> Path:
    folder = project.datastore / "inbox"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def drop(folder: Path, name: str, text: str = "data\n") -> Path:
    """Atomic drop: write elsewhere, rename into place."""
    staging = folder.parent / "staging"
    staging.mkdir(exist_ok=True)
    temp = staging / name.replace("/", "_")
    temp.write_text(text)
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(temp, target)
    return target


def test_per_file_starts_one_run_per_dropped_file_with_its_datastore_path(project, service_for):
    service = service_for(settle="0.2s")
    folder = inbox(project)
    drop(folder, "a.csv")
    drop(folder, "sub/b.csv")
    wait_until(lambda: len(service.runs()) == 2, timeout=10)
    assert service.triggers() == ["file:inbox/a.csv", "file:inbox/sub/b.csv"]
    values = sorted(r.parameters["input_path"] for r in service.runs())
    assert values == ["datastore://default/inbox/a.csv", "datastore://default/inbox/sub/b.csv"]
    wait_until(service.finished, timeout=10)
    assert {r.status for r in service.runs()} == {"completed"}
    assert {f.outcome for f in service.ledger()} == {"started"}


def test_batch_gives_one_run_a_folder_of_links_to_exactly_its_files(project, service_for):
    service = service_for(mode="batch", settle="0.3s")
    folder = inbox(project)
    for i in range(5):
        drop(folder, f"part-{i}.csv", f"{i}\n")
    drop(folder, "deep/x.csv")
    wait_until(lambda: sum(int(r.trigger.split(":")[1]) for r in service.runs()) == 6, timeout=10)
    linked = {}
    for run in service.runs():
        assert run.trigger.startswith("files:")
        links = project.datastore / ".pipesched" / "batches" / run.id
        assert run.parameters["input_path"] == f"datastore://default/.pipesched/batches/{run.id}"
        names = [p.relative_to(links).as_posix() for p in links.rglob("*.csv")]
        assert len(names) == int(run.trigger.split(":")[1])
        linked.update({name: (links / name).read_text() for name in names})
    assert sorted(linked) == ["deep/x.csv", *(f"part-{i}.csv" for i in range(5))]
    assert linked["part-3.csv"] == "3\n"


def test_a_slow_write_triggers_once_after_the_close(project, service_for):
    service = service_for(settle="0.3s")
    folder = inbox(project)
    writer = threading.Thread(target=write_slowly, args=(folder / "slow.csv", 5, 0.5))
    writer.start()
    writer.join()
    closed = os.stat(folder / "slow.csv").st_size
    run = wait_until(lambda: service.runs(), timeout=10)[0]
    assert service.triggers() == ["file:inbox/slow.csv"]
    assert [f.size for f in service.ledger()] == [closed]
    assert run.created_at is not None


def test_a_slow_write_does_not_count_before_its_close(project, service_for):
    service = service_for(settle="0.2s")
    folder = inbox(project)
    with open(folder / "open.csv", "w") as handle:
        handle.write("first\n")
        handle.flush()
        # quiet for 5x settle, but still open: no run yet
        assert not _happens(lambda: service.runs(), 1.0)
    wait_until(lambda: service.runs(), timeout=10)
    assert service.triggers() == ["file:inbox/open.csv"]


def test_rename_into_place_counts_the_final_name_once(project, service_for):
    service = service_for(patterns=["*.csv"], settle="0.2s")
    folder = inbox(project)
    write_slowly(folder / "x.tmp", 4, 0.3)
    assert not _happens(lambda: service.runs(), 0.6), "the .tmp name must not trigger"
    os.rename(folder / "x.tmp", folder / "x.csv")
    wait_until(lambda: service.runs(), timeout=10)
    assert not _happens(lambda: len(service.runs()) > 1, 0.6)
    assert service.triggers() == ["file:inbox/x.csv"]


def test_temporary_and_hidden_names_are_ignored(project, service_for):
    service = service_for(settle="0.1s")
    folder = inbox(project)
    for name in ("a.part", "b.tmp", ".hidden", ".dir/c.csv"):
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("x")
    drop(folder, "real.csv")
    wait_until(lambda: service.runs(), timeout=10)
    assert not _happens(lambda: len(service.runs()) > 1, 0.8)
    assert service.triggers() == ["file:inbox/real.csv"]


def test_files_dropped_while_stopped_run_once_at_start_and_handled_ones_do_not(
    project, service_for
):
    service = service_for(settle="0.1s")
    folder = inbox(project)
    drop(folder, "before.csv")
    wait_until(lambda: len(service.runs()) == 1, timeout=10)
    wait_until(service.finished, timeout=10)
    service.stop()
    for i in range(3):
        drop(folder, f"down-{i}.csv")
    service.start()
    wait_until(lambda: len(service.runs()) == 4, timeout=10)
    assert not _happens(lambda: len(service.runs()) > 4, 1.0)
    assert service.triggers() == [
        "file:inbox/before.csv",
        *(f"file:inbox/down-{i}.csv" for i in range(3)),
    ]


def test_a_changed_file_counts_again(project, service_for):
    service = service_for(settle="0.1s")
    folder = inbox(project)
    drop(folder, "same.csv", "one\n")
    wait_until(lambda: len(service.runs()) == 1, timeout=10)
    drop(folder, "same.csv", "two, longer\n")
    wait_until(lambda: len(service.runs()) == 2, timeout=10)
    assert sorted(f.size for f in service.ledger()) == [4, 12]


def test_a_bare_touch_counts_again_because_its_mtime_is_new(project, service_for):
    """Documented: the ledger key is (path, size, mtime); a touch is a new mtime, so a new run."""
    service = service_for(settle="0.1s")
    folder = inbox(project)
    target = drop(folder, "t.csv")
    wait_until(lambda: len(service.runs()) == 1, timeout=10)
    before = target.stat().st_mtime_ns
    os.utime(target, ns=(before + 10**9, before + 10**9))
    wait_until(lambda: len(service.runs()) == 2, timeout=10)
    assert service.triggers() == ["file:inbox/t.csv", "file:inbox/t.csv"]


def test_a_symlink_leading_outside_the_datastore_is_refused(project, service_for, tmp_path):
    service = service_for(settle="0.1s")
    folder = inbox(project)
    secret = tmp_path / "secret.csv"
    secret.write_text("outside\n")
    os.symlink(secret, folder / "escape.csv")
    drop(folder, "fine.csv")
    wait_until(lambda: service.runs(), timeout=10)
    assert not _happens(lambda: len(service.runs()) > 1, 0.8)
    assert service.triggers() == ["file:inbox/fine.csv"]
    assert "inbox/escape.csv" in service.watcher().refused


def test_polling_mode_sees_drops_and_in_place_writes(project, service_for):
    service = service_for(settle="0.2s", polling_interval="0.2s")
    assert service.status()["observer"] == "polling"
    folder = inbox(project)
    drop(folder, "moved.csv")
    (folder / "written.csv").write_text("in place\n")
    wait_until(lambda: len(service.runs()) == 2, timeout=10)
    assert service.triggers() == ["file:inbox/moved.csv", "file:inbox/written.csv"]


def test_status_names_the_folder_the_pending_files_and_the_last_file(project, service_for):
    service = service_for(settle="30s")
    folder = inbox(project)
    (folder / "waiting.csv").write_text("x")
    wait_until(lambda: service.status()["pending"] == 1, timeout=10)
    status = service.status()
    assert (status["datastore"], status["path"], status["last_file"]) == ("default", "inbox/", None)
    drop(folder, "fast.csv")
    wait_until(lambda: service.status()["last_file"] == "inbox/fast.csv", timeout=10)


def _happens(condition, within: float) -> bool:
    """True if ``condition`` becomes true within ``within`` seconds (for "must not" checks)."""
    try:
        wait_until(condition, timeout=within)
    except AssertionError:
        return False
    return True


# -- the watcher's timing follows the injected clock -------------------------------------------


class ManualClock(Clock):
    """Moves only when the test says so."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=self.seconds)


class RecordingDispatcher:
    def __init__(self) -> None:
        self.requests: list[RunRequest] = []

    async def submit(self, request: RunRequest) -> Outcome:
        self.requests.append(request)
        return Outcome("queued")


def test_settle_and_rescan_follow_the_injected_clock_not_the_wall_clock(project, monkeypatch):
    """A file counts once quiet for ``settle`` on the watcher's clock: a test clock decides,
    with no wait on real time; a file that changed while settling settles again."""
    monkeypatch.setenv(ASSERT_OFF_LOOP, "1")
    clock, dispatcher = ManualClock(), RecordingDispatcher()
    config = project.config()
    schedule = build_schedule(on_change(settle="30s", rescan_interval="10m"), config, None)
    store = project.store()
    watcher = FileWatcher(
        schedule,
        config=config,
        store=store,
        dispatcher=dispatcher,
        definitions=ProjectPipelines(project),
        fs_type=lambda path: None,
        observer_factory=make_observer,
        clock=clock,
    )
    file = inbox(project) / "slow.csv"
    file.write_text("part 1\n")
    try:

        def step_at(seconds: float) -> list[str]:
            clock.seconds = seconds
            asyncio.run(watcher._step())
            return [r.trigger for r in dispatcher.requests]

        assert step_at(1_000.0) == []  # the start-up scan finds it young: settling
        assert watcher._next_deadline() == 1_030.0  # the wake-up is on the watcher's clock
        assert step_at(1_029.9) == []
        file.write_text("part 1\npart 2\n")  # still being written
        assert step_at(1_030.0) == []  # changed since seen: settles again
        assert watcher._next_deadline() == 1_060.0
        assert step_at(1_060.0) == ["file:inbox/slow.csv"]
        assert watcher._next_deadline() == 1_600.0  # next rescan: 10 minutes after the first
    finally:
        store.close()
