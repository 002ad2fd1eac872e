"""A pipeline that uses secrets in step variables, a sql URL, arguments and a parameter, run by the
daemon (a schedule's fire and a REST submit) and by ``pipesched run``: each step proves it got the
values (their sha256 in its outputs), and no byte of any value is left in anything the runs left
or pipesched showed — the state folder with its database, run folders and datastore, the daemon's
log, the plan cache, ``runs --json``, ``show``, the REST API and the web run page."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import requests

from scheduler.core.secrets import MASK
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project, make_project

pytestmark = pytest.mark.slow

TOKEN = "tok-8f1e6a7c-never-on-disk"  # a parameter's value: ${{env.API_TOKEN}}
API_KEY = "key-52d0b9e3-never-on-disk"  # an argument's value: ${{env.API_KEY}}
FILE_KEY = "filekey-0c77a4d1-never-on-disk"  # a step variable's value: ${{file:file-key}}
SECRETS = (TOKEN, API_KEY, FILE_KEY)

PIPELINE = """
name: secretive
parameters:
  token: {type: str, default: "${{env.API_TOKEN}}"}
data:
  hashes: {datastore: default}
steps:
  call:
    type: python_script
    script: call.py
    arguments: [--token, "${{parameters.token}}", --key, "${{env.API_KEY}}"]
    outputs: [hashes]
    allow_reuse: false  # reuse goes by the reference: every run must really receive the values
    environment: {variables: {FILE_KEY: "${{file:file-key}}"}}
  load:
    type: sql
    url: "sqlite:///${{file:db-path}}"
    script: load.sql
    allow_reuse: false
"""

CALL = """
import argparse, hashlib, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("--token")
parser.add_argument("--key")
args = parser.parse_args()
digest = lambda text: hashlib.sha256(text.encode()).hexdigest()
received = {"token": digest(args.token), "key": digest(args.key), "file_key": digest(os.environ["FILE_KEY"])}
with open(os.path.join(json.loads(os.environ["PIPESCHED_OUTPUT_DATASETS"])["hashes"], "hashes.json"), "w") as out:
    json.dump(received, out)
print("hashed", sorted(received))
"""

LOAD = """
CREATE TABLE IF NOT EXISTS received (token TEXT);
INSERT INTO received VALUES (:token);
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build(tmp_path: Path) -> tuple[Project, dict[str, str], Path]:
    project = make_project(tmp_path / "p", logging={"format": "json", "level": "debug"})
    project.pipeline("secretive", PIPELINE, {"call.py": CALL, "load.sql": LOAD})
    project.schedules(
        """
        schedules:
          - {name: nightly, pipeline: secretive, cron: "0 3 * * *"}
        """
    )
    credentials = tmp_path / "credentials"  # what LoadCredential= gives a unit
    credentials.mkdir()
    (credentials / "file-key").write_text(FILE_KEY + "\n")
    target = tmp_path / "elsewhere" / "target.db"  # the sql step's database, outside the state
    target.parent.mkdir()
    (credentials / "db-path").write_text(f"{target}\n")
    env = {
        "API_TOKEN": TOKEN,
        "API_KEY": API_KEY,
        "CREDENTIALS_DIRECTORY": str(credentials),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return project, env, target


def finished(project: Project, run_id: str) -> bool:
    with project.store() as store:
        return store.get_run(run_id).status in ("completed", "failed", "canceled")


def everything_left(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_secrets_reach_the_steps_and_nothing_pipesched_keeps_or_shows_holds_them(
    tmp_path: Path, daemons
):
    project, env, target = build(tmp_path)
    daemon: DaemonProcess = daemons(project, env=env).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)

    fired = project.cli("schedule", "trigger", "nightly", env=env)
    assert fired.returncode == 0, fired.stderr
    status, submitted = daemon_request(
        project,
        "POST",
        "/api/v1/pipelines/secretive/runs",
        {"ParameterAssignments": {"token": "${{env.API_TOKEN}}"}},
    )
    assert status == 202, submitted
    foreground = project.cli(
        "run", "secretive", "-p", "token=${{env.API_TOKEN}}", "--json", env=env
    )
    assert foreground.returncode == 0, foreground.stderr + foreground.stdout

    with project.store() as store:
        runs = store.list_runs(limit=0)
    assert sorted(r.trigger for r in runs) == ["api", "manual", "schedule:nightly"]
    for run in runs:
        wait_until(lambda run=run: finished(project, run.id), timeout=60)

    # Each step got every value: the python step hashed them, the sql step bound the token.
    with project.store() as store:
        details = [store.get_run_detail(r.id) for r in runs]
    for detail in details:
        assert detail.run.status == "completed", detail.to_json()
        assert detail.run.parameters == {"token": "${{env.API_TOKEN}}"}
        outputs = Path(detail.latest_attempts()["call"].outputs["hashes"])
        hashes = json.loads((outputs / "hashes.json").read_text())
        assert hashes == {"token": sha(TOKEN), "key": sha(API_KEY), "file_key": sha(FILE_KEY)}
    assert target.read_bytes().count(TOKEN.encode()) == 3

    # What pipesched shows.
    run_ids = [r.id for r in runs]
    shown = [
        project.cli("runs", "--json", env=env).stdout,
        project.cli("fires", "nightly", env=env).stdout,
        project.cli("status", env=env).stdout,
    ]
    for run_id in run_ids:
        for args in (["show", run_id], ["show", run_id, "--json"]):
            answer = project.cli(*args, env=env)
            assert answer.returncode == 0, answer.stderr
            shown.append(answer.stdout)
        for step in ("call", "load"):
            logged = project.cli("logs", run_id, "--step", step, env=env)
            assert logged.returncode == 0, logged.stderr
            shown.append(logged.stdout)
        status, body = daemon_request(project, "GET", f"/api/v1/runs/{run_id}")
        assert status == 200 and body["parameters"] == {"token": MASK}, body
        shown.append(json.dumps(body))
    web = requests.Session()
    login = web.post(
        f"{listening['url']}/login",
        data={"token": project.token("browser")},
        allow_redirects=False,
        timeout=10,
    )
    assert login.status_code == 303, login.text
    for run_id in run_ids:
        page = web.get(f"{listening['url']}/runs/{run_id}", timeout=10)
        assert page.status_code == 200
        assert f'<td class="mono">{MASK}</td>' in page.text
        shown.append(page.text)
    assert "sqlite:///***" in project.cli("logs", run_ids[0], "--step", "load", env=env).stdout

    daemon.stop()
    kept = everything_left(project.state_dir)
    kept |= everything_left(tmp_path / "cache")
    kept[daemon.log_path] = daemon.log_path.read_bytes()
    assert any(path.name == "pipesched.db" for path in kept)
    assert any(path.name.endswith(".spec.json") for path in kept)  # the sql step's spec
    for secret in (*SECRETS, str(target)):
        assert not [str(path) for path, data in kept.items() if secret.encode() in data], secret
        assert not [text for text in shown if secret in text], secret


def test_a_fire_or_a_rest_submit_whose_secret_is_missing_is_refused_and_says_which(
    tmp_path: Path, daemons
):
    project, env, _ = build(tmp_path)
    without_key = {k: v for k, v in env.items() if k != "API_KEY"}
    daemon: DaemonProcess = daemons(project, env=without_key)
    saved = os.environ.pop("API_KEY", None)
    try:
        daemon.start()
    finally:
        if saved is not None:
            os.environ["API_KEY"] = saved
    fired = project.cli("schedule", "trigger", "nightly", env=without_key)
    status, answer = daemon_request(project, "POST", "/api/v1/pipelines/secretive/runs", {})
    assert status == 409, answer
    assert "${{env.API_KEY}}" in json.dumps(answer)

    def fire_records():
        with project.store() as store:
            return store.list_fires("nightly", limit=0)

    (fire,) = wait_until(fire_records, timeout=30)
    assert fire.outcome == "skipped" and fire.run_id is None
    assert "secret ${{env.API_KEY}}" in (fire.reason or ""), (fire, fired.stdout, fired.stderr)
    with project.store() as store:
        assert store.list_runs(limit=0) == []
