"""``min_free_space``: below it on the state directory's filesystem, no new run starts, and the
reason is recorded. No full disk needed: the threshold is set above the free space there is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler.core.errors import PipeschedError
from scheduler.definitions.config import load_config
from scheduler.dispatch.freespace import free_bytes, human_bytes
from tests.conftest import wait_until
from tests.projects import Project, make_project

HUGE = "1000000TiB"  # more than any filesystem here has free

STEP = """
import pathlib, sys
pathlib.Path(sys.argv[1], "ran").write_text("")
"""


def make(tmp_path: Path, **settings) -> tuple[Project, Path]:
    project = make_project(tmp_path, shutdown_grace="0s", **settings)
    marks = tmp_path / "marks"
    marks.mkdir()
    project.pipeline(
        "p",
        f"""
        steps:
          a: {{type: python_script, script: s.py, arguments: ["{marks}"], allow_reuse: false}}
          b: {{type: python_script, script: s.py, arguments: ["{marks}"], allow_reuse: false,
              depends_on: [a]}}
        """,
        {"s.py": STEP},
    )
    return project, marks


def test_a_fire_below_min_free_space_records_why_its_run_never_started(tmp_path, daemons):
    project, marks = make(tmp_path, min_free_space=HUGE)
    project.schedules("""
        schedules:
          - {name: every, pipeline: p, interval: 1s}
    """)
    daemons(project).start()

    def first_run():
        with project.store() as store:
            done = [r for r in store.list_runs(limit=0) if r.status not in ("queued", "running")]
            return done[0] if done else None

    run = wait_until(first_run, timeout=20)
    assert run.status == "failed"
    reason = run.status_reason or ""
    assert reason.startswith("not started: ")
    assert f"free on {project.state_dir}, min_free_space is 1000000 TiB" in reason
    with project.store() as store:
        steps = store.get_run_detail(run.id).latest_attempts()
        assert {step: attempt.status for step, attempt in steps.items()} == {
            "a": "skipped",
            "b": "skipped",
        }
        fire = next(f for f in store.list_fires("every", limit=0) if f.run_id == run.id)
    assert fire.outcome == "skipped"
    assert fire.reason == reason
    assert not list(marks.iterdir())  # no step ran


def test_a_dropped_file_below_min_free_space_is_settled_with_the_reason(tmp_path, daemons):
    project, marks = make(tmp_path, min_free_space=HUGE)
    project.schedules("""
        schedules:
          - name: on-drop
            pipeline: p
            on_change: {datastore: default, path: inbox/, patterns: ["*.csv"]}
    """)
    inbox = project.datastore / "inbox"
    inbox.mkdir(parents=True)
    daemons(project).start()
    part = inbox / "batch.csv.part"
    part.write_text("a,b\n")
    os.replace(part, inbox / "batch.csv")

    def settled():
        with project.store() as store:
            rows = store.list_file_fires("on-drop")
            return rows if rows and rows[0].outcome == "skipped" else None

    (row,) = wait_until(settled, timeout=20)
    assert row.path == "inbox/batch.csv"
    assert (row.reason or "").startswith("not started: ")
    with project.store() as store:
        run = store.get_run_detail(row.run_id).run if row.run_id else None
    assert run is not None and run.status == "failed" and run.status_reason == row.reason
    assert not list(marks.iterdir())


def test_pipesched_run_below_min_free_space_refuses_and_records_nothing(tmp_path):
    project, marks = make(tmp_path, min_free_space=HUGE)
    result = project.cli("run", "p")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "not started: " in lines[0]
    assert "min_free_space is 1000000 TiB" in lines[0]
    assert "Traceback" not in result.stderr
    with project.store() as store:
        assert [r for r in store.list_runs(limit=0) if r.status in ("queued", "running")] == []
    assert not list(marks.iterdir())


def test_with_the_default_runs_start_as_before(tmp_path):
    project, marks = make(tmp_path)
    assert project.config().min_free_space == 1024**3
    result = project.cli("run", "p")
    assert result.returncode == 0, result.stderr
    assert len(list(marks.iterdir())) == 1
    with project.store() as store:
        assert [r.status for r in store.list_runs(limit=0)] == ["completed"]


def test_the_exact_free_space_plus_one_refuses_and_zero_turns_the_check_off(tmp_path):
    project, _ = make(tmp_path, min_free_space=0)
    project.state_dir.mkdir(parents=True, exist_ok=True)
    assert project.cli("run", "p").returncode == 0
    # Free space moves as others write; a margin far above any of that still refuses.
    above = free_bytes(project.state_dir) + 1024**4
    make_project(tmp_path, shutdown_grace="0s", min_free_space=above)
    result = project.cli("run", "p")
    assert result.returncode == 1
    assert "not started: " in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("1GiB", 1024**3), ("2TB", 2 * 1000**4), ("3 TiB", 3 * 1024**4), ("65536", 65536)],
)
def test_min_free_space_takes_sizes_up_to_tebibytes(tmp_path, text, expected):
    make_project(tmp_path, min_free_space=text)
    assert load_config(tmp_path / "config" / "pipesched.yaml").min_free_space == expected


@pytest.mark.parametrize("text", ["lots", "-1", "1PiB"])
def test_a_bad_min_free_space_names_file_line_and_field(tmp_path, text):
    make_project(tmp_path, min_free_space=text)
    path = tmp_path / "config" / "pipesched.yaml"
    with pytest.raises(PipeschedError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "pipesched.yaml:" in message
    assert "min_free_space" in message


def test_sizes_read_as_the_reason_shows_them():
    assert human_bytes(int(0.4 * 1024**3)) == "0.4 GiB"
    assert human_bytes(1024**3) == "1 GiB"
    assert human_bytes(1000000 * 1024**4) == "1000000 TiB"
    assert human_bytes(512) == "512 B"
