"""The suite never reads the user's working ``config/`` or ``pipelines/``: a newcomer who edits
them (say, adds README's file-drop example to config/schedules.yaml) keeps a green suite. Tests
that need the shipped files read ``tests.projects.shipped``, a copy of git's HEAD."""

from __future__ import annotations

import re
from pathlib import Path

from tests.projects import REPO, shipped

TESTS = Path(__file__).resolve().parent
# The repository root (however spelled) joined with a folder the user edits.
WORKING = re.compile(
    r"(REPO|ROOT|parents\[1\]|parent\.parent|RUNTIME_SOURCE\.parent\.parent)\)?\s*/\s*"
    r"[\"'](config|pipelines)[\"']"
)


def test_no_test_opens_the_working_config_or_pipelines():
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if WORKING.search(line)
    ]
    assert offenders == [], "use tests.projects.shipped(...) instead:\n" + "\n".join(offenders)


def test_the_shipped_copy_is_not_the_working_tree_and_holds_the_shipped_files():
    schedules = shipped("config", "schedules.yaml")
    assert schedules.is_file() and not schedules.resolve().is_relative_to(REPO)
    assert (shipped("pipelines") / "diabetes-training" / "pipeline.yaml").is_file()
