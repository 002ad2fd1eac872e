"""Step reuse: a step is reused exactly when nothing it depends on changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.projects import Project, make_project
from tests.test_executor import execute, steps_of

PIPELINE = """
parameters:
  scale: {type: int, default: 2}
  unused: {type: str, default: "a"}
  inbox: {type: path, default: "datastore://default/inbox"}
data:
  counted: {}
steps:
  count:
    type: python_script
    source_directory: count
    script: count.py
    arguments: ["${{parameters.inbox}}", "${{parameters.scale}}", "${{data.counted}}"]
    outputs: [counted]
  report:
    type: python_script
    source_directory: report
    script: report.py
    arguments: ["${{data.counted}}"]
    inputs: [counted]
"""

COUNT = """
import pathlib, sys
inbox, scale, out = pathlib.Path(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
n = len(list(inbox.glob("*"))) if inbox.exists() else 0
(out / "count.txt").write_text(str(n * scale))
"""
REPORT = """
import pathlib, sys
print("count", (pathlib.Path(sys.argv[1]) / "count.txt").read_text())
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    folder = project.pipeline(
        "reuse", PIPELINE, {"count/count.py": COUNT, "report/report.py": REPORT}
    )
    (project.datastore / "inbox").mkdir(parents=True)
    (project.datastore / "inbox" / "a.csv").write_text("1")
    project.folder = folder
    return project


def statuses(detail) -> dict[str, str]:
    return {name: s["status"] for name, s in steps_of(detail).items()}


def test_unchanged_second_run_reuses_every_step_and_points_at_the_first(project: Project):
    first = execute(project, "reuse")
    second = execute(project, "reuse")
    assert statuses(first) == {"count": "completed", "report": "completed"}
    assert statuses(second) == {"count": "reused", "report": "reused"}
    steps = steps_of(second)
    assert steps["count"]["reused_from"] == first.run.id
    assert steps["count"]["outputs"] == steps_of(first)["count"]["outputs"]
    assert second.run.status == "completed"


def test_reuse_of_a_reuse_points_at_the_run_that_did_the_work(project: Project):
    first = execute(project, "reuse")
    execute(project, "reuse")
    third = execute(project, "reuse")
    assert steps_of(third)["count"]["reused_from"] == first.run.id


def test_reuse_ignored_when_input_folder_changes(project: Project):
    execute(project, "reuse")
    (project.datastore / "inbox" / "b.csv").write_text("2")
    second = execute(project, "reuse")
    assert statuses(second) == {"count": "completed", "report": "completed"}
    assert "count 4" in Path(second.attempts[-1].log_path).read_text()


def test_reuse_ignored_when_a_script_changes_and_downstream_follows(project: Project):
    execute(project, "reuse")
    (project.folder / "count" / "count.py").write_text(COUNT + "\n# edited\n")
    assert statuses(execute(project, "reuse")) == {"count": "completed", "report": "completed"}


def test_only_the_step_whose_source_changed_reruns(project: Project):
    execute(project, "reuse")
    (project.folder / "report" / "report.py").write_text(REPORT + "\n# edited\n")
    assert statuses(execute(project, "reuse")) == {"count": "reused", "report": "completed"}


def test_ignored_files_in_the_source_do_not_break_reuse(project: Project):
    execute(project, "reuse")
    (project.folder / "report" / ".gitignore").write_text("scratch.txt\n")
    execute(project, "reuse")  # the .gitignore itself is a dotfile: ignored
    (project.folder / "report" / "scratch.txt").write_text("noise")
    (project.folder / "report" / "__pycache__").mkdir()
    assert statuses(execute(project, "reuse")) == {"count": "reused", "report": "reused"}


def test_reuse_ignored_when_a_referenced_parameter_changes(project: Project):
    execute(project, "reuse")
    assert statuses(execute(project, "reuse", {"scale": "3"}))["count"] == "completed"


def test_an_unreferenced_parameter_does_not_break_reuse(project: Project):
    execute(project, "reuse")
    assert statuses(execute(project, "reuse", {"unused": "b"})) == {
        "count": "reused",
        "report": "reused",
    }


def test_allow_reuse_false_always_runs(project: Project):
    text = (project.folder / "pipeline.yaml").read_text()
    (project.folder / "pipeline.yaml").write_text(
        text.replace("    outputs: [counted]", "    outputs: [counted]\n    allow_reuse: false")
    )
    execute(project, "reuse")
    assert statuses(execute(project, "reuse"))["count"] == "completed"


def test_regenerate_outputs_runs_every_step(project: Project):
    execute(project, "reuse")
    second = execute(project, "reuse", regenerate_outputs=True)
    assert statuses(second) == {"count": "completed", "report": "completed"}


def test_a_failed_step_is_never_reused(tmp_path: Path):
    project = make_project(tmp_path)
    project.pipeline(
        "f",
        "steps:\n  s: {type: python_script, script: f.py}\n",
        {"f.py": "import sys; sys.exit(1)\n"},
    )
    execute(project, "f")
    assert statuses(execute(project, "f")) == {"s": "failed"}


def test_reuse_ignored_when_the_earlier_outputs_were_deleted(project: Project):
    import shutil

    first = execute(project, "reuse")
    shutil.rmtree(steps_of(first)["count"]["outputs"]["counted"])
    assert statuses(execute(project, "reuse"))["count"] == "completed"


def test_reuse_ignored_when_a_literal_datastore_source_changes(tmp_path: Path):
    project = make_project(tmp_path)
    (project.datastore / "raw").mkdir(parents=True)
    (project.datastore / "raw" / "a.csv").write_text("1")
    project.pipeline(
        "literal",
        """
        steps:
          read:
            type: python_script
            script: read.py
            arguments: ["datastore://default/raw"]
        """,
        {"read.py": "print('read')\n"},
    )
    execute(project, "literal")
    assert statuses(execute(project, "literal")) == {"read": "reused"}
    (project.datastore / "raw" / "b.csv").write_text("2")
    assert statuses(execute(project, "literal")) == {"read": "completed"}


def test_sql_steps_are_not_reused_unless_asked(tmp_path: Path):
    project = make_project(tmp_path)
    project.pipeline(
        "q",
        f"""
        steps:
          q: {{type: sql, url: "sqlite:///{tmp_path}/db.sqlite", script: q.sql}}
        """,
        {"q.sql": "SELECT 1;\n"},
    )
    execute(project, "q")
    assert statuses(execute(project, "q")) == {"q": "completed"}
