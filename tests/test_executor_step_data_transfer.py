"""The data_transfer step through the real executor: copy and sync between datastores and into
data outputs, patterns, mtimes, atomic replacement, confinement."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.projects import Project, make_project
from tests.test_executor import execute, steps_of

OLD = 1_600_000_000_123_456_789  # an mtime in ns that no fresh file has


def log_of(detail, step: str) -> str:
    return Path(detail.latest_attempts()[step].log_path).read_text()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    raw = project.datastore / "raw"
    for rel, body in {"a.csv": "a\n", "sub/b.csv": "bb\n", "notes.txt": "n\n"}.items():
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        (raw / rel).write_text(body)
    return project


def transfer(project: Project, **fields) -> None:
    step = {"type": "data_transfer", "allow_reuse": False, **fields}
    project.pipeline("move", {"data": {"staged": {}}, "steps": {"move": step}})


def test_copy_into_a_data_output_takes_only_matching_files(project: Project):
    transfer(project, source="datastore://default/raw", destination="staged", patterns=["*.csv"])
    detail = execute(project, "move")
    step = steps_of(detail)["move"]
    assert step["status"] == "completed", log_of(detail, "move")
    staged = Path(step["outputs"]["staged"])
    files = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    assert files == ["a.csv", "sub/b.csv"]
    assert step["metrics"] == {"files_copied": 2, "files_skipped": 0, "bytes_copied": 5}


def test_second_sync_copies_nothing_and_then_only_the_changed_file(project: Project):
    transfer(
        project,
        source="datastore://default/raw",
        destination="datastore://default/mirror",
        mode="sync",
    )
    first = steps_of(execute(project, "move"))["move"]["metrics"]
    second = steps_of(execute(project, "move"))["move"]["metrics"]
    (project.datastore / "raw" / "sub" / "b.csv").write_text("changed, and longer\n")
    third = steps_of(execute(project, "move"))["move"]["metrics"]
    assert (first["files_copied"], first["files_skipped"]) == (3, 0)
    assert (second["files_copied"], second["files_skipped"]) == (0, 3)
    assert (third["files_copied"], third["files_skipped"]) == (1, 2)
    assert (project.datastore / "mirror" / "sub" / "b.csv").read_text() == "changed, and longer\n"


def test_copy_mode_copies_unchanged_files_again(project: Project):
    transfer(project, source="datastore://default/raw", destination="datastore://default/mirror")
    execute(project, "move")
    again = steps_of(execute(project, "move"))["move"]["metrics"]
    assert (again["files_copied"], again["files_skipped"]) == (3, 0)


def test_copies_keep_the_source_mtimes(project: Project):
    source = project.datastore / "raw" / "a.csv"
    os.utime(source, ns=(OLD, OLD))
    transfer(project, source="datastore://default/raw", destination="datastore://default/mirror")
    execute(project, "move")
    assert (project.datastore / "mirror" / "a.csv").stat().st_mtime_ns == OLD


def test_a_changed_file_replaces_its_target_by_rename_never_in_place(project: Project):
    transfer(
        project,
        source="datastore://default/raw",
        destination="datastore://default/mirror",
        mode="sync",
    )
    execute(project, "move")
    target = project.datastore / "mirror" / "a.csv"
    with open(target) as reader:  # a reader of the old copy keeps seeing all of it
        (project.datastore / "raw" / "a.csv").write_text("new content\n")
        execute(project, "move")
        assert reader.read() == "a\n"
    assert target.read_text() == "new content\n"
    leftovers = [
        p.name for p in (project.datastore / "mirror").rglob("*") if "pipesched-tmp" in p.name
    ]
    assert leftovers == []


def test_a_single_file_is_copied_into_a_destination_folder(project: Project):
    transfer(
        project,
        source="datastore://default/raw/sub/b.csv",
        destination="datastore://default/inbox/",
    )
    detail = execute(project, "move")
    assert detail.run.status == "completed", log_of(detail, "move")
    assert (project.datastore / "inbox" / "b.csv").read_text() == "bb\n"


def test_a_source_escaping_its_datastore_is_refused(project: Project):
    (project.root / "secret.txt").write_text("not yours\n")
    transfer(project, source="datastore://default/../../secret.txt", destination="staged")
    detail = execute(project, "move")
    step = steps_of(detail)["move"]
    assert step["status"] == "failed"
    assert "leads outside datastore 'default'" in log_of(detail, "move")
    assert list(Path(step["outputs"].get("staged", project.datastore / "none")).glob("*")) == []


def test_a_symlink_leading_out_of_the_datastore_is_refused(project: Project):
    (project.root / "secret.txt").write_text("not yours\n")
    (project.datastore / "raw" / "link.csv").symlink_to(project.root / "secret.txt")
    transfer(project, source="datastore://default/raw", destination="datastore://default/mirror")
    detail = execute(project, "move")
    assert steps_of(detail)["move"]["status"] == "failed"
    assert "link.csv in the source leads outside its datastore" in log_of(detail, "move")
    assert not (project.datastore / "mirror" / "link.csv").exists()
