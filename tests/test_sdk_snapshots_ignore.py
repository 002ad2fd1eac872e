"""A notebook whose steps say ``source_directory='.'`` in the project folder itself — config,
pipesched's ``var/`` (the store, the daemon's socket, the datastore) and all — snapshots only its
source: embedded and through a real daemon, with that daemon's socket in the folder. What
``.amlignore`` excludes stays out; when there is no ``.amlignore``, ``.gitignore`` decides; when
both exist, ``.gitignore`` is not read (Azure ML's rule)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from scheduler.sdk import Experiment, Pipeline, PythonScriptStep, Workspace
from tests.conftest import wait_until
from tests.projects import Project, make_project

SHOW_FILES = """
import os
here = os.path.dirname(os.path.abspath(__file__))
for folder, dirs, files in os.walk(here):
    for name in files:
        print("file:", os.path.relpath(os.path.join(folder, name), here), flush=True)
"""


@pytest.fixture
def notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The notebook's folder is the project: a step script beside config/ and var/."""
    project = make_project(tmp_path / "notebook")
    (project.root / "show_files.py").write_text(SHOW_FILES)
    (project.root / "data").mkdir()
    (project.root / "data" / "big.csv").write_text("1,2\n")
    (project.root / "notes.txt").write_text("kept unless an ignore file says otherwise\n")
    project.datastore.mkdir(parents=True)
    (project.datastore / "raw.csv").write_text("a,b\n")
    monkeypatch.chdir(project.root)
    return project


def _pipeline(ws: Workspace) -> Pipeline:
    step = PythonScriptStep(
        name="show files", script_name="show_files.py", source_directory=".", compute_target="local"
    )
    return Pipeline(workspace=ws, steps=[step])


def _snapshot_files(project: Project, run_id: str) -> list[str]:
    """The files of the snapshot a run ran, relative to the step's folder."""
    shown = project.cli("show", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    digest = json.loads(shown.stdout)["content_hash"]
    files = project.state_dir / "snapshots" / digest / "files"
    (step_folder,) = [p.parent for p in files.rglob("show_files.py")]
    return sorted(str(p.relative_to(step_folder)) for p in step_folder.rglob("*") if not p.is_dir())


def _run(ws: Workspace, project: Project) -> list[str]:
    run = Experiment(ws, "snapshots").submit(_pipeline(ws), regenerate_outputs=True)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    listed = _snapshot_files(project, run.id)
    logs = project.cli("logs", run.id)
    assert logs.returncode == 0, logs.stderr
    # What the step saw in its folder is what the snapshot holds (ignore files aside).
    seen = sorted(line[len("file: ") :] for line in logs.stdout.splitlines() if "file: " in line)
    assert [f for f in seen if not f.startswith(".")] == [
        f for f in listed if not f.startswith(".")
    ]
    return listed


def _listening_socket(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    return server


def test_the_state_directory_and_datastore_stay_out_embedded(notebook: Project):
    ws = Workspace.from_config(path=str(notebook.config_path))
    # A socket of the notebook's own (not pipesched's) is no source either.
    with _listening_socket(notebook.root / "kernel.sock"):
        files = _run(ws, notebook)
    assert "show_files.py" in files and "notes.txt" in files and "data/big.csv" in files
    assert not [f for f in files if f.startswith("var/") or f.endswith(".sock")]
    assert "config/pipesched.yaml" in files  # source as far as pipesched can tell


def test_a_daemon_running_in_the_folder_does_not_break_submit(notebook: Project, daemons):
    daemon = daemons(notebook).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    assert (notebook.state_dir / "pipesched.sock").exists()
    token = notebook.cli("token", "create", "snapshots").stdout.strip().splitlines()[-1]
    for ws in (
        Workspace.from_config(path=str(notebook.config_path)),
        Workspace(url=listening["url"], token=token),
    ):
        files = _run(ws, notebook)
        assert "show_files.py" in files
        assert not [f for f in files if f.startswith("var/")]


def test_a_state_directory_of_another_config_stays_out(notebook: Project, tmp_path: Path):
    """The folder holds the ``var/`` of some other pipesched (its store is all it has)."""
    other = notebook.root / "old-var"
    other.mkdir()
    (other / "pipesched.db").write_bytes(b"SQLite format 3\0")
    (other / "runs").mkdir()
    (other / "runs" / "log.txt").write_text("x\n")
    files = _run(Workspace.from_config(path=str(notebook.config_path)), notebook)
    assert not [f for f in files if f.startswith("old-var/")]


def test_gitignore_leaves_files_out(notebook: Project):
    (notebook.root / ".gitignore").write_text("data/\n*.txt\n")
    files = _run(Workspace.from_config(path=str(notebook.config_path)), notebook)
    assert "data/big.csv" not in files and "notes.txt" not in files
    assert "show_files.py" in files


def test_amlignore_wins_over_gitignore(notebook: Project):
    (notebook.root / ".gitignore").write_text("*.txt\n")
    (notebook.root / ".amlignore").write_text("data/\n")
    files = _run(Workspace.from_config(path=str(notebook.config_path)), notebook)
    assert "data/big.csv" not in files  # .amlignore's
    assert "notes.txt" in files  # .gitignore is not read when .amlignore exists


def test_published_pipelines_snapshot_the_same_files(notebook: Project):
    ws = Workspace.from_config(path=str(notebook.config_path))
    (notebook.root / ".amlignore").write_text("data/\n")
    published = _pipeline(ws).publish(name="show-files", version="1")
    files_root = notebook.state_dir / "published" / "show-files" / published.version / "files"
    (step_folder,) = [p.parent for p in files_root.rglob("show_files.py")]
    names = sorted(
        os.path.relpath(p, step_folder) for p in step_folder.rglob("*") if not p.is_dir()
    )
    assert "notes.txt" in names and "data/big.csv" not in names
    assert not [n for n in names if n.startswith("var/")]
