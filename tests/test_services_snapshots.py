"""Content-addressed snapshots of saved pipeline folders, safe unpacking of uploaded archives,
publishing a loaded definition, and finding the definition a recorded run ran."""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors, NotFound, PipeschedError
from scheduler.dispatch.submit import content_hash, submit_run
from scheduler.executor import ExecutionOptions, RunExecutor
from scheduler.services.publish import load_published, publish, publish_definition, publish_run
from scheduler.services.snapshots import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_MEMBERS,
    BadUpload,
    UploadTooLarge,
    definition_for_run,
    load_snapshot_by_id,
    snapshots_dir,
    store_snapshot,
    unpack_upload,
)
from tests.projects import Project, make_project

# A saved SDK pipeline: its scripts in a subfolder, as Pipeline.save writes them.
SAVED = """\
name: training   # named by the notebook
steps:
  say:
    type: python_script
    source_directory: scripts
    script: say.py
    arguments: ["${{data.out}}"]
    outputs: [out]
data:
  out: {}  # the step's output
"""
SAY = "import pathlib, sys\npathlib.Path(sys.argv[1], 'said.txt').write_text({word!r})\n"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "home")


def saved_folder(root: Path, word: str = "old", definition: str = SAVED) -> Path:
    """What ``Pipeline.save(folder)`` leaves: pipeline.yaml plus the steps' sources."""
    folder = root / "saved"
    (folder / "scripts").mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(definition)
    (folder / "scripts" / "say.py").write_text(SAY.format(word=word))
    return folder


def tar_gz(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def tar_folder(folder: Path, arcname: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buffer.getvalue()


def member(name: str, data: bytes = b"", **fields) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data if info.isfile() else None


def execute(project: Project, pipeline, *, version: str | None = None):
    config = project.config()
    with project.store() as store:
        run = submit_run(config, store, pipeline, {}, version=version)
        executor = RunExecutor(
            config=config, store=store, pipeline=pipeline, run=run, options=ExecutionOptions()
        )
        asyncio.run(executor.execute())
        return store.get_run(run.id)


def said(project: Project, run_id: str) -> str:
    with project.store() as store:
        outputs = store.get_run_detail(run_id).to_json()["steps"][0]["outputs"]
    return (Path(outputs["out"]) / "said.txt").read_text()


# -- store_snapshot -------------------------------------------------------------------------


def test_snapshot_is_named_by_the_content_hash_a_run_records(project, tmp_path):
    config = project.config()
    folder = saved_folder(tmp_path)
    snapshot_id, pipeline = store_snapshot(config, folder)
    assert snapshot_id == content_hash(pipeline) == content_hash(project.load(str(folder)))
    assert pipeline.name == "training"
    assert pipeline.directory.is_relative_to(snapshots_dir(config) / snapshot_id)


def test_storing_the_same_folder_twice_keeps_one_snapshot(project, tmp_path):
    config = project.config()
    folder = saved_folder(tmp_path)
    first, _ = store_snapshot(config, folder)
    second, pipeline = store_snapshot(config, folder)
    assert first == second
    assert [p.name for p in snapshots_dir(config).iterdir()] == [first]
    assert pipeline.directory.is_relative_to(snapshots_dir(config) / first)


def test_racing_writers_of_one_folder_end_with_one_snapshot(project, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    config = project.config()
    folder = saved_folder(tmp_path)
    with ThreadPoolExecutor(4) as pool:
        ids = {
            snapshot_id for snapshot_id, _ in pool.map(store_snapshot, [config] * 4, [folder] * 4)
        }
    assert len(ids) == 1
    assert [p.name for p in snapshots_dir(config).iterdir()] == list(ids)


def test_changed_folder_gets_a_new_snapshot(project, tmp_path):
    config = project.config()
    first, _ = store_snapshot(config, saved_folder(tmp_path, "old"))
    second, _ = store_snapshot(config, saved_folder(tmp_path, "new"))
    assert first != second


def test_snapshot_files_are_read_only(project, tmp_path):
    _, pipeline = store_snapshot(project.config(), saved_folder(tmp_path))
    script = Path(pipeline.steps["say"].source_directory) / "say.py"
    assert script.stat().st_mode & 0o222 == 0
    assert pipeline.file.stat().st_mode & 0o222 == 0


def test_snapshot_outlives_the_saved_folder(project, tmp_path):
    config = project.config()
    folder = saved_folder(tmp_path)
    snapshot_id, _ = store_snapshot(config, folder)
    shutil.rmtree(folder)
    pipeline = load_snapshot_by_id(config, snapshot_id)
    run = execute(project, pipeline)
    assert run.status == "completed" and run.content_hash == snapshot_id
    assert said(project, run.id) == "old"


def test_bad_definition_raises_its_errors_and_stores_nothing(project, tmp_path):
    config = project.config()
    folder = saved_folder(tmp_path, definition=SAVED.replace("script: say.py", "script: nope.py"))
    with pytest.raises(DefinitionErrors, match=r"pipeline.yaml:\d+:\d+: error: .*nope.py"):
        store_snapshot(config, folder)
    assert not list(snapshots_dir(config).glob("*"))


def test_snapshot_ids_are_hashes_never_paths(project, tmp_path):
    config = project.config()
    store_snapshot(config, saved_folder(tmp_path))
    for wrong in ("../published", "0123456789abcdef", "..", ""):
        with pytest.raises(NotFound, match="no pipeline snapshot"):
            load_snapshot_by_id(config, wrong)


# -- unpack_upload ------------------------------------------------------------------------------


def test_upload_of_a_saved_folder_is_stored_as_its_snapshot(project, tmp_path):
    config = project.config()
    folder = saved_folder(tmp_path)
    snapshot_id, pipeline = unpack_upload(config, tar_folder(folder, "training"))
    assert snapshot_id == store_snapshot(config, folder)[0]
    assert list(pipeline.steps) == ["say"]
    assert [p.name for p in snapshots_dir(config).iterdir()] == [snapshot_id]  # no leftovers


def test_upload_with_pipeline_yaml_at_the_top_works_when_it_is_named(project, tmp_path):
    _, pipeline = unpack_upload(project.config(), tar_folder(saved_folder(tmp_path), "."))
    assert pipeline.name == "training"


def test_upload_with_an_unnamed_pipeline_yaml_at_the_top_is_refused(project, tmp_path):
    folder = saved_folder(tmp_path, definition=SAVED.replace("name: training", ""))
    with pytest.raises(BadUpload, match="no 'name:'"):
        unpack_upload(project.config(), tar_folder(folder, "."))


def test_upload_errors_name_the_file_inside_the_archive(project, tmp_path):
    folder = saved_folder(tmp_path, definition=SAVED.replace("outputs: [out]", "outputs: [gone]"))
    with pytest.raises(DefinitionErrors) as caught:
        unpack_upload(project.config(), tar_folder(folder, "training"))
    assert str(caught.value).startswith("training/pipeline.yaml:")
    assert ": error: " in str(caught.value)


@pytest.mark.parametrize(
    "entries",
    [
        [member("../evil.py", b"x")],
        [member("training/../../evil.py", b"x")],
        [member("/tmp/evil.py", b"x")],
        [member("training/link", type=tarfile.SYMTYPE, linkname="../../../etc")],
        [member("training/link", type=tarfile.SYMTYPE, linkname="/etc/passwd")],
        [member("training/hard", type=tarfile.LNKTYPE, linkname="/etc/passwd")],
        [member("training/dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)],
        [member("training/fifo", type=tarfile.FIFOTYPE)],
    ],
    ids=[
        "dotdot",
        "inner-dotdot",
        "absolute",
        "symlink-out",
        "abs-symlink",
        "hardlink",
        "dev",
        "fifo",
    ],
)
def test_unsafe_archive_members_are_refused_and_nothing_lands(project, tmp_path, entries):
    with pytest.raises(BadUpload):
        unpack_upload(project.config(), tar_gz(entries))
    assert not (project.root / "evil.py").exists() and not (tmp_path / "evil.py").exists()
    assert not list(snapshots_dir(project.config()).iterdir())


def test_a_symlink_inside_the_folder_is_copied_as_its_file(project, tmp_path):
    folder = saved_folder(tmp_path)
    os.symlink("say.py", folder / "scripts" / "alias.py")
    _, pipeline = unpack_upload(project.config(), tar_folder(folder, "training"))
    copy = Path(pipeline.steps["say"].source_directory) / "alias.py"
    assert not copy.is_symlink() and copy.read_text() == SAY.format(word="old")


def test_archive_unpacking_beyond_the_size_cap_is_refused_before_writing(project):
    big = tarfile.TarInfo("training/huge.bin")
    big.size = MAX_UPLOAD_BYTES + 1
    # Only the header: the cap is checked on what members declare, before any data is read.
    data = gzip.compress(big.tobuf(format=tarfile.PAX_FORMAT) + b"\0" * 1024)
    with pytest.raises(UploadTooLarge):
        unpack_upload(project.config(), data)


def test_archive_with_too_many_members_is_refused(project):
    entries = [member(f"training/{i}.txt") for i in range(MAX_UPLOAD_MEMBERS + 1)]
    with pytest.raises(UploadTooLarge, match="members"):
        unpack_upload(project.config(), tar_gz(entries))


def test_not_a_tar_gz_is_refused(project):
    with pytest.raises(BadUpload, match="not a readable tar"):
        unpack_upload(project.config(), b"pipeline.yaml: plain text")


# -- publish_definition -------------------------------------------------------------------------


def test_publish_definition_of_a_folder_with_a_source_subfolder(project, tmp_path):
    config = project.config()
    _, pipeline = store_snapshot(config, saved_folder(tmp_path))
    with project.store() as store:
        published = publish_definition(config, store, pipeline, version="1")
        loaded, label = load_published(config, store, "training", None)
    assert (published.id, label) == ("training@1", "1")
    assert (published.snapshot_dir / "files" / "saved" / "scripts" / "say.py").is_file()
    assert published.content_hash == content_hash(pipeline) == content_hash(loaded)
    assert said(project, execute(project, loaded, version=label).id) == "old"


def test_publishing_under_another_name_rewrites_the_copy_and_keeps_comments(project, tmp_path):
    config = project.config()
    _, pipeline = store_snapshot(config, saved_folder(tmp_path))
    with project.store() as store:
        published = publish_definition(config, store, pipeline, name="scoring")
        loaded, _ = load_published(config, store, "scoring", "1")
    assert (published.pipeline, loaded.name) == ("scoring", "scoring")
    text = loaded.file.read_text()
    assert text.startswith('name: "scoring"\n') and "named by the notebook" not in text
    assert "out: {}  # the step's output" in text  # the rest as written


def test_publish_of_a_working_copy_still_works_by_name(project):
    working_echo(project, "w")
    with project.store() as store:
        published = publish(project.config(), store, "echo")
    assert published.id == "echo@1"


# -- definition_for_run and publish_run ---------------------------------------------------------


def working_echo(project: Project, word: str) -> None:
    """The saved pipeline as a working copy ``pipelines/echo``, its script saying ``word``."""
    project.pipeline(
        "echo",
        SAVED.replace("name: training", "name: echo"),
        {"scripts/say.py": SAY.format(word=word)},
    )


def test_run_of_a_published_version_finds_that_version(project):
    working_echo(project, "old")
    with project.store() as store:
        publish(project.config(), store, "echo")
        pipeline, label = load_published(project.config(), store, "echo", "1")
    run = execute(project, pipeline, version=label)
    working_echo(project, "new")
    with project.store() as store:
        found = definition_for_run(project.config(), store, run)
    assert found.directory == pipeline.directory
    assert content_hash(found) == run.content_hash


def test_run_of_an_sdk_snapshot_finds_the_snapshot(project, tmp_path):
    config = project.config()
    snapshot_id, pipeline = store_snapshot(config, saved_folder(tmp_path))
    run = execute(project, pipeline)
    with project.store() as store:
        found = definition_for_run(config, store, run)
    assert found.directory.is_relative_to(snapshots_dir(config) / snapshot_id)


def test_run_of_the_working_copy_finds_the_working_copy(project):
    working_echo(project, "old")
    run = execute(project, project.load("echo"))
    with project.store() as store:
        found = definition_for_run(project.config(), store, run)
    assert found.directory == project.root / "pipelines" / "echo"
    assert content_hash(found) == run.content_hash


def test_changed_working_copy_is_still_found_but_not_published(project):
    working_echo(project, "old")
    run = execute(project, project.load("echo"))
    working_echo(project, "new")
    with project.store() as store:
        found = definition_for_run(project.config(), store, run)
        assert content_hash(found) != run.content_hash
        with pytest.raises(PipeschedError, match=f"pipeline echo changed since run {run.id}"):
            publish_run(project.config(), store, run.id, name="echo")


def test_publish_run_publishes_what_a_completed_snapshot_run_ran(project, tmp_path):
    config = project.config()
    _, pipeline = store_snapshot(config, saved_folder(tmp_path))
    run = execute(project, pipeline)
    with project.store() as store:
        published = publish_run(config, store, run.id[:10], name="nightly", version="v1")
        loaded, _ = load_published(config, store, "nightly", "v1")
    assert published.id == "nightly@v1"
    assert said(project, execute(project, loaded, version="v1").id) == "old"


def test_publish_run_publishes_a_run_that_has_not_started_yet(project, tmp_path):
    config = project.config()
    _, pipeline = store_snapshot(config, saved_folder(tmp_path))
    with project.store() as store:
        run = submit_run(config, store, pipeline, {})
        assert store.get_run(run.id).status == "queued"
        published = publish_run(config, store, run.id, name="nightly")
        loaded, _ = load_published(config, store, "nightly", published.version)
    assert said(project, execute(project, loaded, version=published.version).id) == "old"
