"""The file-drop ledger in the store (each backend), and the service's use of it across a crash
between a claim and its run, and across a reload."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from scheduler.core.ids import new_run_id
from scheduler.store import Store
from scheduler.store.records import FileKey as K
from tests.conftest import wait_until
from tests.file_drops_harness import Service, file_drop_project, on_change


def _run(store: Store, **kwargs):
    return store.create_run(
        pipeline="p",
        content_hash="h",
        experiment="e",
        parameters={},
        trigger="files:2",
        steps=[("s", "s", "command")],
        schedule="drops",
        **kwargs,
    )


def test_a_claim_is_insert_or_ignore_per_path_size_and_mtime(store: Store):
    first = store.claim_files("drops", [K("in/a.csv", 1, 10), K("in/b.csv", 2, 20)])
    again = store.claim_files("drops", [K("in/a.csv", 1, 10), K("in/a.csv", 5, 11)])
    assert first == [K("in/a.csv", 1, 10), K("in/b.csv", 2, 20)]
    assert again == [K("in/a.csv", 5, 11)]  # changed file: a new key
    assert store.count_file_fires("drops") == 3
    assert store.claimed_files("drops") == [*first, K("in/a.csv", 5, 11)]


def test_create_run_settles_its_file_claims_with_a_pregenerated_id(store: Store):
    store.claim_files("drops", [K("in/a.csv", 1, 10), K("in/b.csv", 2, 20), K("in/c.csv", 3, 30)])
    run_id = new_run_id(datetime.now(UTC))
    run = _run(
        store,
        run_id=run_id,
        file_fires=[("drops", "in/a.csv", 1, 10), ("drops", "in/b.csv", 2, 20)],
    )
    assert run.id == run_id
    rows = {f.path: f for f in store.list_file_fires("drops")}
    assert (rows["in/a.csv"].outcome, rows["in/a.csv"].run_id) == ("started", run_id)
    assert (rows["in/b.csv"].outcome, rows["in/b.csv"].run_id) == ("started", run_id)
    assert (rows["in/c.csv"].outcome, rows["in/c.csv"].run_id) == ("claimed", None)
    assert store.claimed_files("drops") == [K("in/c.csv", 3, 30)]
    assert store.last_file("drops") in ("in/a.csv", "in/b.csv")


def test_a_claim_left_by_a_crash_gets_its_run_at_the_next_start(tmp_path: Path):
    project = file_drop_project(tmp_path)
    folder = project.datastore / "inbox"
    folder.mkdir()
    (folder / "claimed.csv").write_text("x")
    st = (folder / "claimed.csv").stat()
    with project.store() as store:  # the crash: claimed, no run
        store.claim_files("drops", [K("inbox/claimed.csv", st.st_size, st.st_mtime_ns)])
    service = Service(project, on_change(settle="0.1s")).start()
    try:
        wait_until(lambda: service.triggers() == ["file:inbox/claimed.csv"], timeout=10)
        assert [f.outcome for f in service.ledger()] == ["started"]
    finally:
        service.close()


def test_a_reload_that_changes_the_folder_watches_the_new_one(tmp_path: Path):
    project = file_drop_project(tmp_path)
    for name in ("inbox", "other"):
        (project.datastore / name).mkdir()
    service = Service(project, on_change(settle="0.1s")).start()
    try:
        changed = service.schedule.model_copy(
            update={"on_change": service.schedule.on_change.model_copy(update={"path": "other/"})}
        )
        service.call(service.service.update({service.name: changed}))
        assert service.status()["path"] == "other/"
        (project.datastore / "other" / "new.csv").write_text("x")
        wait_until(lambda: service.triggers() == ["file:other/new.csv"], timeout=10)
        service.call(service.service.update({}))
        assert service.service.watchers == {}
    finally:
        service.close()
