"""The notify outbox in the store: an alert is written with what caused it (a run ending failed,
fires recorded missed), once per event and target, only for targets that listen to it, and only
while the daemon has set routes; and a pipeline's ``notify`` changes nothing for pipelines
without one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler.definitions.operating import NotifyTarget
from scheduler.store import Store
from scheduler.store.outbox import NotifyRoutes, target_key

PAGER = NotifyTarget(on=("failed", "recovered"), command=("page-me",))
HOOK = NotifyTarget(on=("failed", "missed"), webhook="https://hooks.example/x")
NOMINAL = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def _run(store: Store, *, schedule: str | None = "nightly", definition: dict | None = None) -> str:
    version = store.ensure_pipeline_version("train", "h1", definition or {"steps": {}})
    return store.create_run(
        pipeline="train",
        content_hash="h1",
        experiment="train",
        parameters={},
        trigger=f"schedule:{schedule}" if schedule else "manual",
        steps=[],
        schedule=schedule,
        pipeline_version_id=version,
    ).id


def test_a_failed_run_is_one_event_per_target_that_listens(store):
    store.route_notifications(
        NotifyRoutes(
            targets=(PAGER, HOOK),
            schedules={"nightly": (PAGER,)},  # the same target twice: sent once
            run_url="http://127.0.0.1:8080/runs/",
        )
    )
    run_id = _run(store)
    store.finish_run(run_id, "failed", "step 'train' failed (exit status 3)")

    rows = store.notifications()
    assert sorted(row["target_key"] for row in rows) == sorted(
        [target_key(PAGER), target_key(HOOK)]
    )
    assert len({row["event_id"] for row in rows}) == 1
    event = rows[0]["payload"]
    assert event["event"] == "failed" and event["run_id"] == run_id
    assert event["pipeline"] == "train" and event["schedule"] == "nightly"
    assert event["reason"] == "step 'train' failed (exit status 3)"
    assert event["url"] == f"http://127.0.0.1:8080/runs/{run_id}"
    assert store.outbox_counts().pending == 2


def test_without_routes_or_listeners_nothing_is_written(store):
    store.finish_run(_run(store), "failed", "boom")  # no routes: a foreground run
    store.route_notifications(NotifyRoutes(targets=(NotifyTarget(on=("missed",), command=("x",)),)))
    store.finish_run(_run(store), "failed", "boom")
    store.finish_run(_run(store), "canceled", "by user")
    assert store.notifications() == []


def test_the_pipelines_own_targets_come_with_the_definition_it_ran(store):
    store.route_notifications(NotifyRoutes())
    own = {"on": ["failed"], "command": ["mail-team"], "webhook": None, "secret": None,
           "timeout": 10.0, "retries": 5}  # fmt: skip
    store.finish_run(_run(store, definition={"steps": {}, "notify": [own]}), "failed", "x")
    (row,) = store.notifications()
    assert row["payload"]["event"] == "failed"


def test_the_first_completed_run_after_a_failed_one_is_recovered(store):
    store.route_notifications(NotifyRoutes(targets=(PAGER,)))
    store.finish_run(_run(store), "completed")  # nothing failed before: no event
    store.finish_run(_run(store), "failed", "x")
    store.finish_run(_run(store), "completed")
    store.finish_run(_run(store), "completed")  # the previous one completed: no event
    assert [row["event"] for row in store.notifications()] == ["failed", "recovered"]


def test_missed_fires_recorded_together_are_one_event_and_never_twice(store):
    store.route_notifications(NotifyRoutes(targets=(HOOK,), schedule_pipelines={"hourly": "train"}))
    times = [NOMINAL + timedelta(hours=h) for h in range(3)]
    assert store.record_fires("hourly", times, outcome="missed", reason="catch-up rule") == 3
    # Recorded again (a restart's catch-up): insert-or-ignore, so no second event.
    assert store.record_fires("hourly", times, outcome="missed", reason="catch-up rule") == 0
    (row,) = store.notifications()
    event = row["payload"]
    assert event["event"] == "missed" and event["count"] == 3
    assert event["schedule"] == "hourly" and event["pipeline"] == "train"
    assert event["nominal_time"] == times[-1].isoformat()


def test_a_claimed_fire_settled_missed_is_one_event(store):
    store.route_notifications(NotifyRoutes(targets=(HOOK,)))
    assert store.claim_fire("hourly", NOMINAL)
    store.update_fire("hourly", NOMINAL, outcome="missed", reason="catch-up rule")
    store.update_fire("hourly", NOMINAL, outcome="missed", reason="catch-up rule")
    assert [row["payload"]["nominal_time"] for row in store.notifications()] == [
        NOMINAL.isoformat()
    ]


def test_an_attempt_is_delivered_retried_or_given_up(store):
    store.route_notifications(NotifyRoutes(targets=(PAGER,)))
    for _ in range(3):
        store.finish_run(_run(store), "failed", "x")
    first, second, third = store.due_notifications(10)
    store.notification_sent(first.id, error=None, retry_after=None)
    store.notification_sent(second.id, error="HTTP 500", retry_after=60)
    store.notification_sent(third.id, error="HTTP 500", retry_after=None)
    assert store.due_notifications(10) == []  # the retry is not due for a minute
    assert store.outbox_counts().pending == 1 and store.outbox_counts().failed == 1
    rows = {row["id"]: row for row in store.notifications()}
    assert rows[first.id]["delivered_at"] is not None
    assert rows[second.id]["last_error"] == "HTTP 500" and rows[second.id]["attempts"] == 1
    assert store.prune_notifications(keep=1) == 1  # the older of the two settled rows
    assert {row["id"] for row in store.notifications()} == {second.id, third.id}


def test_a_pipeline_without_notify_hashes_as_before(tmp_path):
    from tests.projects import make_project

    project = make_project(tmp_path)
    steps = "steps:\n  s: {type: python_script, script: s.py}\n"
    project.pipeline("train", steps, {"s.py": "pass\n"})
    plain = project.load("train").definition_dict()
    project.pipeline("train", "notify: [{on: [failed], command: [page-me]}]\n" + steps)
    paged = project.load("train").definition_dict()
    assert "notify" not in plain  # so definitions stored before notify existed hash the same
    assert paged.pop("notify")[0]["command"] == ["page-me"]
    assert paged == plain


def test_routes_join_the_config_the_schedules_and_the_pipelines_targets(tmp_path):
    from scheduler.daemon.alerts import configured_targets, notify_routes
    from scheduler.daemon.schedule_set import load_schedule_set
    from tests.projects import make_project

    pager = {"on": ["failed"], "command": ["page-me"]}
    project = make_project(tmp_path, notify=[pager])
    project.pipeline(
        "train",
        "notify: [{on: [missed], webhook: 'https://hooks.example/team'}]\n"
        "steps:\n  s: {type: python_script, script: s.py}\n",
        {"s.py": "pass\n"},
    )
    project.schedules(
        "schedules:\n"
        "  - name: nightly\n    pipeline: train\n    cron: '0 2 * * *'\n"
        "    notify: [{on: [failed, missed], command: [page-me]}]\n"  # the config's, again
    )
    served = load_schedule_set(project.config_path, strict=True)
    routes = notify_routes(served.config, served.schedules, served.pipelines)
    failed = routes.targets_for("failed", "nightly")
    missed = routes.targets_for("missed", "nightly", routes.pipelines["train"])
    assert [t.command for t in failed] == [("page-me",)]
    assert sorted(str(t.command or t.webhook) for t in missed) == [
        "('page-me',)",
        "https://hooks.example/team",
    ]
    assert routes.schedule_pipelines == {"nightly": "train"}
    # notify test sends once to each place a target is configured: page-me is one target.
    assert len(configured_targets(served.config, served.schedules, served.pipelines)) == 2
