"""Sending alerts for real: a webhook that answers 500 twice gets the event on the third try,
signed so the receiver can check it; ``pipesched notify test`` reaches a receiver and a command
and says which target failed; and a command that hangs never holds up the next run."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
from pathlib import Path

import pytest

from scheduler.daemon.alerts import Alerts
from scheduler.definitions.operating import NotifyTarget
from scheduler.store.outbox import new_event
from tests.conftest import wait_until
from tests.daemon_harness import daemon_request
from tests.notify_receivers import command_events, command_target, http_receiver
from tests.projects import make_project


@pytest.mark.slow  # waits out the 1 s and 2 s backoff
def test_a_webhook_that_answers_500_twice_gets_the_event_on_the_third_try(tmp_path):
    project = make_project(tmp_path)
    config = project.config()
    with http_receiver() as receiver, project.store() as store:
        receiver.answers = [500, 500]
        target = NotifyTarget(on=("failed",), webhook=receiver.url, secret="${{env.HOOK_KEY}}")
        event = new_event("failed", store.runs._clock.now(), message="run x failed")
        store.add_notification(event, [target])

        async def deliver() -> None:
            alerts = Alerts(store, store.runs._clock, config)
            task = asyncio.ensure_future(alerts.run())
            try:
                while not (rows := store.notifications()) or not rows[0]["delivered_at"]:
                    await asyncio.sleep(0.05)
            finally:
                task.cancel()

        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOOK_KEY", "s3cret")
            asyncio.run(asyncio.wait_for(deliver(), 30))
        (row,) = store.notifications()
    assert row["attempts"] == 3 and row["failed_at"] is None
    assert receiver.tried() == 3
    (taken,) = receiver.events
    assert taken["id"] == event["id"]
    headers, body = receiver.requests[-1]
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["x-pipesched-signature"] == f"sha256={expected}"
    assert headers["x-pipesched-event"] == "failed"
    assert headers["x-pipesched-delivery"] == event["id"]
    # Every try carried the same id, so a receiver can drop a repeat.
    assert {h["x-pipesched-delivery"] for h, _ in receiver.requests} == {event["id"]}


@pytest.mark.slow  # a CLI process that loads every definition
def test_notify_test_sends_a_sample_to_every_target_and_names_the_ones_that_failed(tmp_path):
    argv, out = command_target(tmp_path)
    with http_receiver() as receiver:
        project = make_project(
            tmp_path / "p",
            notify=[
                {"on": ["failed"], "webhook": receiver.url, "secret": "k"},
                {"on": ["missed"], "command": argv},
                {"on": ["failed"], "command": [sys.executable, "-c", "import sys; sys.exit(4)"]},
                {"on": ["failed"], "command": ["${{env.NO_SUCH}}"]},
            ],
        )
        result = project.cli("notify", "test", "--event", "missed", "--json")
    assert result.returncode == 1, result.stderr
    answers = json.loads(result.stdout)
    assert [a["ok"] for a in answers] == [True, True, False, False]
    assert answers[0]["target"] == f"webhook {receiver.url}"
    assert answers[2]["reason"] == "exit status 4"
    # The reference is shown, never a value: masked in the target, named in the reason.
    assert answers[3] == {
        "target": "command ***",
        "ok": False,
        "reason": "secret ${{env.NO_SUCH}}: the environment variable NO_SUCH is not set",
    }
    (sample,) = command_events(out)
    assert sample["event"] == "missed" and sample["test"] is True
    assert [e["id"] for e in receiver.events] == [sample["id"]]


@pytest.mark.slow  # a real daemon
def test_a_hanging_command_does_not_delay_the_next_run(tmp_path, daemons):
    hang = [sys.executable, "-c", "import time; time.sleep(600)", str(tmp_path)]
    project = make_project(tmp_path, notify=[{"on": ["failed"], "command": hang, "timeout": 300}])
    project.pipeline(
        "breaks",
        "steps:\n  s: {type: python_script, script: s.py}\n",
        {"s.py": "raise SystemExit(2)\n"},
    )
    daemon = daemons(project).start()
    first = _run(project, "breaks")
    wait_until(lambda: _status(project, first) == "failed", timeout=60)
    wait_until(lambda: _hook_running(tmp_path), timeout=30)  # the first alert's hook hangs
    second = _run(project, "breaks")
    wait_until(lambda: _status(project, second) == "failed", timeout=60)
    with project.store() as store:
        rows = store.notifications()
    assert len(rows) == 2 and all(row["delivered_at"] is None for row in rows)
    assert daemon.stop() == 0
    assert not _hook_running(tmp_path)  # stopped with the daemon, left pending for the next


def _run(project, pipeline: str) -> str:
    status, body = daemon_request(project, "POST", f"/api/v1/pipelines/{pipeline}/runs", {})
    assert status == 202, body
    return body["Id"]


def _status(project, run_id: str) -> str:
    with project.store() as store:
        return store.get_run(run_id).status


def _hook_running(marker: Path) -> bool:
    """Whether a hanging hook of this test (its argv names ``marker``) is running."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"time.sleep(600)" in cmdline and str(marker).encode() in cmdline:
            return True
    return False
