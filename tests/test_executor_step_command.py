"""The command step through the real executor: an argv list, ${{...}} substituted, never a shell."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.projects import Project, make_project
from tests.test_executor import execute, steps_of

SHOW_ARGV = """
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd()}))
"""


def log_of(detail, step: str) -> str:
    return Path(detail.latest_attempts()[step].log_path).read_text()


def command_pipeline(project: Project, command: list[str], scripts: dict[str, str]) -> None:
    project.pipeline(
        "cmd",
        {
            "parameters": {"word": {"type": "str", "default": "hello world"}},
            "steps": {"tool": {"type": "command", "command": command}},
        },
        scripts,
    )


def test_command_gets_each_element_as_one_argv_entry_without_a_shell(tmp_path: Path):
    project = make_project(tmp_path)
    tricky = "$(touch pwned); echo *"
    command_pipeline(
        project,
        [sys.executable, "show.py", "${{parameters.word}}", tricky, "${{run.id}}"],
        {"show.py": SHOW_ARGV},
    )
    detail = execute(project, "cmd", {"word": "a b"})
    assert detail.run.status == "completed", log_of(detail, "tool")
    seen = json.loads(log_of(detail, "tool").splitlines()[-1])
    assert seen["argv"] == ["a b", tricky, detail.run.id]
    workdir = detail.latest_attempts()["tool"].workdir
    assert seen["cwd"] == workdir
    assert not any(Path(workdir).parent.rglob("pwned")) and not (tmp_path / "pwned").exists()


def test_command_runs_a_program_of_its_source_directory_by_relative_path(tmp_path: Path):
    project = make_project(tmp_path)
    folder = project.pipeline(
        "cmd",
        {"steps": {"tool": {"type": "command", "command": ["./tool.sh", "x"]}}},
        {"tool.sh": '#!/bin/sh\necho "tool ran with $1 in $(pwd)"\n'},
    )
    os.chmod(folder / "tool.sh", 0o755)
    detail = execute(project, "cmd")
    assert detail.run.status == "completed"
    assert "tool ran with x in" in log_of(detail, "tool")


def test_command_exit_code_fails_the_step(tmp_path: Path):
    project = make_project(tmp_path)
    command_pipeline(project, [sys.executable, "-c", "import sys; sys.exit(4)"], {})
    step = steps_of(execute(project, "cmd"))["tool"]
    assert (step["status"], step["exit_code"]) == ("failed", 4)


def test_missing_program_fails_the_step_with_the_reason_in_its_log(tmp_path: Path):
    project = make_project(tmp_path)
    command_pipeline(project, ["no-such-tool-pipesched", "--help"], {})
    detail = execute(project, "cmd")
    step = steps_of(detail)["tool"]
    assert (step["status"], step["exit_code"]) == ("failed", 127)
    assert "command not found: no-such-tool-pipesched" in log_of(detail, "tool")
