"""``pipesched --url URL`` (or ``$PIPESCHED_URL``) with ``$PIPESCHED_TOKEN``: reads and control
commands ask that daemon's REST API and print what they print on its machine; ``daemon``,
``validate`` and ``run`` ignore it. A real daemon listening on 127.0.0.1 with a real token."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project
from tests.test_cli_fast_reads import build_project

WAIT = """
    steps:
      wait:
        type: python_script
        script: wait.py
"""
WAIT_SCRIPT = """
    import pathlib, time

    deadline = time.monotonic() + 120
    while not pathlib.Path("../../go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, list[str], str, str]]:
    """A built project, its daemon's API URL and a token."""
    project, run_ids = build_project(tmp_path_factory.mktemp("remote") / "p")
    project.pipeline("wait", WAIT, {"wait.py": WAIT_SCRIPT})
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        created = project.cli("token", "create", "remote")
        assert created.returncode == 0, created.stderr
        yield project, run_ids, listening["url"], created.stdout.strip().splitlines()[-1]
    finally:
        daemon.close()


def remote(project: Project, url: str, token: str, *args: str, env_url: bool = False):
    """``pipesched --url URL ARGS`` run where no config can be found (or with $PIPESCHED_URL)."""
    env = {"PIPESCHED_TOKEN": token, "PIPESCHED_CONFIG": str(project.root / "nowhere.yaml")}
    if env_url:
        return project.cli(*args, env={**env, "PIPESCHED_URL": url})
    return project.cli("--url", url, *args, env=env)


def test_reads_print_what_they_print_on_the_daemons_machine(live) -> None:
    project, run_ids, url, token = live
    newest = run_ids[-1]
    for args in [
        ("runs", "--json"),
        ("runs", "--json", "--limit", "0"),
        ("runs", "--json", "--pipeline", "train", "--status", "completed", "--limit", "2"),
        ("show", newest, "--json"),
        ("show", newest[:7], "--json"),
        ("logs", newest, "--step", "train"),
        ("logs", newest, "--step", "score", "-n", "1"),
        ("logs", newest),
        ("fires", "yearly", "--json"),
        ("models", "--json"),
        ("models", "show", "reads-model:1", "--json"),
        ("metrics", "train", "--json", "--last", "2"),
        ("metrics", "train", "--csv"),
        ("schedules", "--json"),
        ("pipelines", "--json"),
        ("pipelines",),
    ]:
        here = project.cli(*args)
        there = remote(project, url, token, *args)
        assert here.returncode == 0, (args, here.stderr)
        assert there.returncode == 0, (args, there.stderr)
        assert there.stdout == here.stdout, args
    by_env = remote(project, url, token, "runs", "--json", env_url=True)
    assert by_env.returncode == 0 and by_env.stdout == project.cli("runs", "--json").stdout
    after = project.cli("runs", "--json", "--url", url, env={"PIPESCHED_TOKEN": token})
    assert after.returncode == 0 and after.stdout == by_env.stdout  # --url after the command


def test_tables_read_through_the_api(live) -> None:
    project, run_ids, url, token = live
    runs = remote(project, url, token, "runs")
    assert runs.returncode == 0, runs.stderr
    assert [line.split()[0] for line in runs.stdout.splitlines()[1:]] == run_ids[::-1]
    shown = remote(project, url, token, "show", run_ids[-1])
    assert shown.returncode == 0, shown.stderr
    assert "accuracy=0.85" in shown.stdout and "Timeline" in shown.stdout
    schedules = remote(project, url, token, "schedules", "-o", "wide")
    assert schedules.returncode == 0, schedules.stderr
    assert "yearly" in schedules.stdout and "At 03:00" in schedules.stdout


def test_a_refused_or_missing_token_is_one_clear_line(live) -> None:
    project, _, url, _ = live
    refused = remote(project, url, "pst_not_a_token", "runs")
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: token refused by {url}")
    missing = project.cli("--url", url, "runs", env={"PIPESCHED_TOKEN": ""})
    assert missing.returncode == 1 and "PIPESCHED_TOKEN" in missing.stderr
    unknown = remote(project, url, "x", "show", "zzzz")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr


def test_control_commands_act_on_the_daemon(live) -> None:
    project, _, url, token = live
    disabled = remote(project, url, token, "schedule", "disable", "yearly")
    assert disabled.returncode == 0, disabled.stderr
    assert disabled.stdout.strip() == "schedule yearly disabled"
    (state,) = json.loads(project.cli("schedules", "--json").stdout)
    assert (state["enabled"], state["override"]) == (False, "disabled")
    enabled = remote(project, url, token, "schedule", "enable", "yearly")
    assert enabled.returncode == 0 and enabled.stdout.strip() == "schedule yearly enabled"

    status, answer = daemon_request(project, "POST", "/api/v1/pipelines/wait/runs")
    assert status == 202, answer
    run_id = answer["Id"]

    def status() -> str:
        return json.loads(project.cli("show", run_id, "--json").stdout)["status"]

    wait_until(lambda: status() == "running", timeout=30)
    canceled = remote(project, url, token, "cancel", run_id)
    assert canceled.returncode == 0, canceled.stderr
    assert canceled.stdout.strip() == f"canceled {run_id}"
    assert status() == "canceled"

    fired = remote(project, url, token, "schedule", "trigger", "yearly")
    assert fired.returncode == 0, fired.stderr
    assert fired.stdout.startswith("schedule yearly fired: run ")

    reloaded = remote(project, url, token, "reload")
    assert reloaded.returncode == 0, reloaded.stderr
    assert reloaded.stdout.strip() == "reloaded: 1 schedules served"


def test_daemon_validate_and_run_ignore_the_url(live) -> None:
    project, _, _, _ = live
    elsewhere = {"PIPESCHED_URL": "http://127.0.0.1:9", "PIPESCHED_TOKEN": "pst_x"}
    checked = project.cli("validate", env=elsewhere)
    assert checked.returncode == 0, checked.stderr
    ran = project.cli("run", "train", "--json", env=elsewhere)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["status"] == "completed"
