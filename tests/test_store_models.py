"""The model registry's records and files, on SQLite and PostgreSQL: versions count 1, 2, 3 per
name, also when writers race; a registered version keeps the files it was given; names cannot
lead a path out of the registry's folder; folders and files are private."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from scheduler.core.errors import NotFound
from scheduler.runtime import claim_version, model_file, model_versions, stage_model
from scheduler.store import AlreadyExists, Store
from scheduler.store.model_files import (
    BadModelName,
    StagedModel,
    discard_stale_staging,
    models_root,
    record_step_model,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return models_root(tmp_path / "datastore")


def register(store: Store, root: Path, source: Path, name: str, **meta) -> object:
    return store.register_model(name, StagedModel.copy_of(root, name, source), **meta)


def model_source(tmp_path: Path, name: str = "model.pkl", content: str = "weights") -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def test_versions_count_from_one_per_name(store: Store, root: Path, tmp_path: Path) -> None:
    source = model_source(tmp_path)
    first = register(store, root, source, "diabetes", tags={"area": "diabetes"})
    second = register(store, root, source, "diabetes", description="retrained")
    other = register(store, root, source, "churn")
    assert [(m.name, m.version) for m in (first, second, other)] == [
        ("diabetes", 1),
        ("diabetes", 2),
        ("churn", 1),
    ]
    assert second.id == "diabetes:2"
    assert first.path == str(root / "diabetes" / "1" / "model.pkl")
    assert Path(second.path).read_text() == "weights"
    assert store.get_model("diabetes").version == 2
    assert store.get_model("diabetes", 1).tags == {"area": "diabetes"}


def test_a_registered_version_keeps_its_files_when_the_source_changes(
    store: Store, root: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "src" / "model_dir"
    folder.mkdir(parents=True)
    (folder / "weights.bin").write_text("v1")
    (folder / "nested").mkdir()
    (folder / "nested" / "vocab.txt").write_text("a b c")
    model = register(store, root, folder, "bert")
    (folder / "weights.bin").write_text("changed by a later run")
    (folder / "nested" / "vocab.txt").unlink()
    kept = Path(model.path)
    assert kept == root / "bert" / "1" / "model_dir"
    assert (kept / "weights.bin").read_text() == "v1"
    assert (kept / "nested" / "vocab.txt").read_text() == "a b c"


def test_registry_folders_and_files_are_private(store: Store, root: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = tmp_path / "src" / "model_dir"
        (folder / "nested").mkdir(parents=True)
        (folder / "nested" / "w.bin").write_text("w")
        model = register(store, root, folder, "private")
    finally:
        os.umask(old)
    modes = {
        path.relative_to(root): stat.S_IMODE(path.stat().st_mode)
        for path in [root, *root.rglob("*")]
        if ".staging" not in path.parts
    }
    assert modes[Path(".")] == 0o700
    assert modes[Path("private/1/model_dir/nested/w.bin")] == 0o600
    assert {m for p, m in modes.items() if (root / p).is_dir()} == {0o700}
    assert Path(model.path).is_dir()


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "-dash", "x" * 256])
def test_a_name_that_could_leave_the_folder_is_refused(
    store: Store, root: Path, tmp_path: Path, name: str
) -> None:
    with pytest.raises(BadModelName, match="invalid model name"):
        register(store, root, model_source(tmp_path), name)
    assert store.list_models() == []
    assert not (root.parent / "escape").exists()


def test_unknown_names_and_versions_name_what_exists(
    store: Store, root: Path, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="no model named 'ghost'"):
        store.get_model("ghost")
    register(store, root, model_source(tmp_path), "real")
    with pytest.raises(NotFound, match="has no version 7") as raised:
        store.get_model("real", 7)
    assert raised.value.hint == "versions: 1"


def test_list_filters_by_name_tags_properties_run_and_latest(
    store: Store, root: Path, tmp_path: Path
) -> None:
    source = model_source(tmp_path)
    register(store, root, source, "a", tags={"area": "diabetes", "score": 0.8})
    register(store, root, source, "a", tags={"area": "churn"}, run_id="r1", step="train")
    register(store, root, source, "b", tags={"area": "diabetes"}, properties={"algo": "ridge"})
    assert _ids(store.list_models()) == ["a:2", "a:1", "b:1"]
    assert _ids(store.list_models("a")) == ["a:2", "a:1"]
    assert _ids(store.list_models(tags={"area": "diabetes"})) == ["a:1", "b:1"]
    assert _ids(store.list_models(tags={"score": "0.8"})) == ["a:1"]
    assert _ids(store.list_models(tags={"score": None})) == ["a:1"]
    assert _ids(store.list_models(properties={"algo": None})) == ["b:1"]
    assert _ids(store.list_models(run_id="r1")) == ["a:2"]
    assert _ids(store.list_models(latest=True)) == ["a:2", "b:1"]
    assert _ids(store.list_models(latest=True, tags={"area": "diabetes"})) == ["b:1"]
    (from_run,) = store.list_models(run_id="r1")
    assert (from_run.run_id, from_run.step) == ("r1", "train")


def test_racing_writers_get_distinct_consecutive_versions(
    database_url: str, root: Path, tmp_path: Path
) -> None:
    source = model_source(tmp_path)
    stores = [Store.open(database_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    versions: list[int] = []
    errors: list[BaseException] = []

    def writer(store: Store) -> None:
        try:
            start.wait()
            for _ in range(3):
                versions.append(register(store, root, source, "raced").version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for store in stores:
        store.close()
    assert errors == []
    assert sorted(versions) == list(range(1, 13))
    assert model_versions(root, "raced") == list(range(1, 13))
    with Store.open(database_url) as store:
        recorded = {m.version: m.path for m in store.list_models("raced")}
    assert recorded == {v: model_file(root, "raced", v) for v in range(1, 13)}


def test_a_version_a_step_claimed_is_recorded_with_its_run_and_step(
    store: Store, root: Path, tmp_path: Path
) -> None:
    version, path = claim_version(root, "scored", stage_model(root, model_source(tmp_path)))
    request = {"name": "scored", "version": version, "tags": {"k": "v"}, "description": "d"}
    model = record_step_model(store, root, request, run_id="run1", step="train")
    assert (model.id, model.path, model.run_id, model.step) == ("scored:1", path, "run1", "train")
    assert model.tags == {"k": "v"} and model.description == "d"
    # A notebook registering next takes the version after the step's.
    assert register(store, root, model_source(tmp_path), "scored").version == 2


def test_a_step_version_the_store_already_has_moves_to_the_next_free_one(
    store: Store, root: Path, tmp_path: Path
) -> None:
    register(store, root, model_source(tmp_path, content="old"), "m")
    # Its folder deleted by hand: a step then claims version 1 again in the folder.
    shutil.rmtree(root / "m" / "1")
    version, _ = claim_version(root, "m", stage_model(root, model_source(tmp_path, content="new")))
    assert version == 1
    with pytest.raises(AlreadyExists):
        store.add_model("m", 1, "/elsewhere")
    model = record_step_model(store, root, {"name": "m", "version": 1}, run_id="r", step="s")
    assert model.version == 2
    assert Path(model.path).read_text() == "new"
    assert model_versions(root, "m") == [2]


def test_stale_staging_copies_are_removed(root: Path, tmp_path: Path) -> None:
    staged = Path(stage_model(root, model_source(tmp_path)))
    fresh = Path(stage_model(root, model_source(tmp_path)))
    old = staged.stat().st_mtime - 2 * 24 * 3600
    os.utime(staged, (old, old))
    discard_stale_staging(root)
    assert not staged.exists() and fresh.exists()


def _ids(models: list) -> list[str]:
    return [model.id for model in models]
