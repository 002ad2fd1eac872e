"""README's examples are tests: every ```sh and ```python block of its quick start, tour, daemon,
REST and SDK sections runs, in README order, against a real daemon started on a pristine copy
of the shipped ``config/`` and ``pipelines/``, and must exit 0.

The rules a README block follows:

- A block that cannot run in a test (it installs packages, starts ``pipesched daemon`` in the
  foreground, needs systemd, or names a command not there yet) carries
  ``<!-- no-test: reason -->`` on the line right above its fence, and is left out.
- ``sh`` blocks run in ``bash -euo pipefail`` in the copy's folder, with ``pipesched`` on PATH;
  ``python`` blocks run with this interpreter in the same folder.
- ``1m89gh8n``, README's example run id, stands for a run that is running: the test starts a
  foreground run of a one-step pipeline that sleeps (``readme-sleeper``, added to the copy) and
  puts its id's first 8 characters in place of the example, so ``pipesched cancel 1m89gh8n``
  cancels a real run by a prefix. Elsewhere README says ``latest``.
- ``127.0.0.1:8790``, the shipped API address, becomes the test daemon's own address: the copy
  listens on port 0, so daemons of tests running side by side never share a port.
- ``$PIPESCHED_TOKEN`` holds a token the test created; ``scripts/prep.py`` and
  ``scripts/train.py``, the step scripts the SDK example names, are written to the copy.
- Before each block, the test waits until no run is in flight, as a reader would before typing
  the next example (a schedule with ``concurrency: forbid`` fires only then).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.projects import REPO, Project, shipped
from tests.test_readme_sdk_example import PREP, TRAIN

SECTIONS = (
    "Quick start",
    "A short tour",
    "The daemon and schedules",
    "Published pipelines and the REST API",
    "The web view",
    "Python pipelines in Azure ML SDK v1's words (`scheduler.sdk`)",
    "Backfills and the run's time",
    "Operating it",
)
EXAMPLE_ID = "1m89gh8n"
SHIPPED_API = "127.0.0.1:8790"
NO_TEST = re.compile(r"^<!-- no-test: (?P<reason>\S.*?) -->$")
SLEEPER = "steps:\n  sleep: {type: command, command: [sleep, '600']}\n"


@dataclass(frozen=True)
class Block:
    section: str
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    no_test: str | None  # the reason it is left out, or None

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.section}, {self.language})"


def readme_blocks() -> list[Block]:
    """The ```sh and ```python blocks of the sections under test, in README order."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    section = ""
    number = 0
    while number < len(lines):
        line = lines[number]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = re.fullmatch(r"```(sh|python)", line)
        if fence and section in SECTIONS:
            end = lines.index("```", number + 1)
            above = NO_TEST.match(lines[number - 1]) if number else None
            code = "\n".join(lines[number + 1 : end]) + "\n"
            reason = above.group("reason") if above else None
            blocks.append(Block(section, number + 1, fence.group(1), code, reason))
            number = end
        number += 1
    return blocks


def test_the_sections_under_test_have_runnable_examples():
    blocks = readme_blocks()
    assert {b.section for b in blocks} == set(SECTIONS)
    assert all(b.section in SECTIONS for b in blocks)
    runnable = [b for b in blocks if b.no_test is None]
    assert len(runnable) >= 8, [str(b) for b in blocks]


def test_no_example_tells_the_reader_to_signal_the_daemon_by_hand():
    for block in readme_blocks():
        assert "kill -HUP" not in block.code, block


# -- running them -----------------------------------------------------------------------------


def readme_world(root: Path) -> Project:
    """A pristine copy of the shipped config and pipelines, as a newcomer's checkout has them,
    plus what the rules above add."""
    for folder in ("config", "pipelines"):
        shutil.copytree(shipped(folder), root / folder)
    config = root / "config" / "pipesched.yaml"
    text = config.read_text()
    assert "port: 8790" in text
    config.write_text(text.replace("port: 8790", "port: 0"))
    (root / "pipelines" / "readme-sleeper").mkdir()
    (root / "pipelines" / "readme-sleeper" / "pipeline.yaml").write_text(SLEEPER)
    (root / "scripts").mkdir()
    (root / "scripts" / "prep.py").write_text(PREP)
    (root / "scripts" / "train.py").write_text(TRAIN)
    return Project(root)


def reader_env(tmp_path: Path, token: str) -> dict[str, str]:
    """A shell where ``pipesched`` is this checkout's, and no PIPESCHED_CONFIG points
    elsewhere: commands find ./config/pipesched.yaml as a reader's would."""
    folder = tmp_path / "bin"
    folder.mkdir()
    launcher = folder / "pipesched"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m scheduler.cli "$@"\n')
    launcher.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPESCHED_")}
    env.update(
        PATH=f"{folder}{os.pathsep}{env['PATH']}",
        PYTHONPATH=str(REPO),
        PIPESCHED_TOKEN=token,
        NO_COLOR="1",
    )
    return env


def runs_in_flight(project: Project) -> list[dict]:
    listed = project.cli("runs", "--json", "--status", "running", "--status", "queued")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


@pytest.mark.slow
def test_every_readme_example_runs(tmp_path: Path, daemons):
    project = readme_world(tmp_path / "checkout")
    daemon = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=20)
    address = listening["url"].split("://", 1)[1]
    created = project.cli("token", "create", "readme-examples")
    assert created.returncode == 0, created.stderr
    env = reader_env(tmp_path, created.stdout.splitlines()[-1])

    ran = 0
    for block in readme_blocks():
        if block.no_test is not None:
            continue
        wait_until(lambda: not runs_in_flight(project), timeout=180, message=f"runs before {block}")
        code = block.code.replace(SHIPPED_API, address)
        sleeper = None
        if EXAMPLE_ID in code:
            sleeper, run_id = start_sleeper(project, env)
            code = code.replace(EXAMPLE_ID, run_id[:8])
        try:
            done = run_block(block, code, project.root, env, tmp_path)
        finally:
            if sleeper is not None:
                # A canceled run's process exits on its own (130); a SIGINT sent while it is
                # already on its way out would kill it instead.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    sleeper.wait(timeout=20)
                if sleeper.poll() is None:
                    sleeper.send_signal(signal.SIGINT)
                sleeper.wait(timeout=60)
        assert done.returncode == 0, f"{block} failed:\n{code}\n{done.stdout}\n{done.stderr}"
        if sleeper is not None:  # the example canceled the sleeper's run, by its prefix
            shown = json.loads(project.cli("show", run_id, "--json").stdout)
            assert (shown["status"], sleeper.returncode) == ("canceled", 130), block
        ran += 1
    assert ran >= 8


def start_sleeper(project: Project, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """A foreground ``pipesched run readme-sleeper``, once its run is running; (process, id)."""
    sleeper = subprocess.Popen(
        ["pipesched", "run", "readme-sleeper"],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def running() -> str | None:
        return next((r["id"] for r in runs_in_flight(project) if r["status"] == "running"), None)

    return sleeper, wait_until(running, timeout=60, message="the sleeper's run is running")


def run_block(
    block: Block, code: str, cwd: Path, env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    if block.language == "sh":
        argv = ["bash", "-euo", "pipefail", "-c", code]
    else:
        script = tmp_path / f"readme_{block.line}.py"
        script.write_text(code)
        argv = [sys.executable, str(script)]
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
