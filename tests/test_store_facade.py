"""The store's facade: composed of repositories (no mixins), every public method guarded
against running on the event loop's thread, statuses that are enums yet plain JSON strings."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.core.loopguard import ENV_VAR, BlockingOnLoop, run_blocking
from scheduler.store import Store
from scheduler.store.records import (
    FINISHED_RUN_STATUSES,
    FINISHED_STEP_STATUSES,
    FIRE_OUTCOMES,
    RUN_STATUSES,
    STEP_STATUSES,
    FireOutcome,
    RunStatus,
    StepStatus,
)

NOT_DELEGATED = {
    "open",
    "close",
    "fence",
    "unfence",
    "lead",
    "schema_behind",
    "migrate_now",
    "route_notifications",
}  # no transaction of a repository
AREA_OF = {
    name: area
    for area, names in {
        "runs": "create_run start_run finish_run mark_recovered begin_attempt set_attempt_process"
        " end_attempt mark_step record_reuse add_metrics find_reusable resolve_run_id get_run"
        " get_run_detail list_runs run_metrics running_attempts open_runs",
        "fires": "claim_fire record_fires update_fire fires_with_outcome list_fires count_fires",
        "ledger": "claim_files known_files claimed_files mark_files last_file list_file_fires"
        " count_file_fires",
        "schedules": "register_schedules schedule_states set_override add_api_schedule"
        " api_schedules get_api_schedule delete_api_schedule update_api_schedule",
        "published": "ensure_pipeline_version add_published get_published list_published"
        " get_default_version set_default_version endpoint_default add_endpoint_version"
        " pipeline_definition"
        " set_endpoint_default rename_endpoint get_endpoint list_endpoints",
        "tokens": "add_token list_token_records find_token revoke_token touch_token",
        "models": "register_model add_model get_model list_models",
        "figures": "run_counts fire_counts last_success_times step_attempts_after pruned_counts",
        "upkeep": "probe_write wal_bytes checkpoint",
        "leaders": "leadership take_leadership renew_lease beat daemon_beats forget_daemons",
        "outbox": "add_notification add_delivered due_notifications notification_sent"
        " prune_notifications outbox_counts notifications",
        "retention": "protected_runs prunable_page ledger_rows delete_runs delete_old_fires"
        " existing_runs run_count database_bytes",
        "backfills": "create_backfill resolve_backfill_id get_backfill list_backfills"
        " backfill_times set_backfill_time finish_backfill take_backfill fire_holders"
        " recorded_run_status claim_backfill_fire settle_backfill_fire",
    }.items()
    for name in names.split()
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path}/pipesched.db")
    yield opened
    opened.close()


def public_methods(store: Store) -> list[str]:
    names = (name for name in dir(Store) if not name.startswith("_") and name not in NOT_DELEGATED)
    return sorted(name for name in names if callable(getattr(store, name)))


def test_the_store_composes_repositories_and_inherits_nothing(store: Store) -> None:
    assert Store.__mro__ == (Store, object)
    areas = {"runs", "fires", "ledger", "schedules", "published", "tokens", "models", "figures",
             "retention"}  # fmt: skip
    assert areas <= set(vars(store))
    assert public_methods(store) == sorted(
        AREA_OF
    )  # the 50 methods Store had as mixins, and upkeep


def test_each_facade_method_keeps_its_repository_signature(store: Store) -> None:
    for name in public_methods(store):
        facade = getattr(store, name)
        repository = getattr(getattr(store, AREA_OF[name]), name)
        assert inspect.signature(facade) == inspect.signature(repository), name
        assert (facade.__name__, facade.__doc__) == (name, repository.__doc__)
    assert str(inspect.signature(store.claim_fire)) == (
        "(schedule: 'str', nominal_time: 'datetime', *, outcome: 'str' = 'claimed', "
        "reason: 'str | None' = None) -> 'bool'"
    )
    assert store.claim_fire is store.claim_fire  # bound once per store


def test_every_public_method_refuses_the_event_loop_under_the_guard(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "1")

    async def on_the_loop() -> list[str]:
        refused = []
        for name in public_methods(store):
            with pytest.raises(BlockingOnLoop, match=f"store.{name} ran on the event loop"):
                getattr(store, name)()  # refused before its arguments are even looked at
            refused.append(name)
        return refused

    assert len(asyncio.run(on_the_loop())) == 102


def test_a_worker_thread_may_call_the_store_under_the_guard(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "1")

    async def from_a_thread() -> list[object]:
        return await run_blocking(store.list_runs)

    assert asyncio.run(from_a_thread()) == []
    assert store.list_runs() == []  # no loop on this thread: allowed


def test_without_the_guard_the_loop_thread_is_not_checked(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)

    async def on_the_loop() -> list[object]:
        return list(store.list_runs())

    assert asyncio.run(on_the_loop()) == []


def test_statuses_are_enums_whose_constants_and_json_are_plain_strings() -> None:
    assert RUN_STATUSES == ("queued", "running", "completed", "failed", "canceled")
    assert STEP_STATUSES == (
        "pending",
        "running",
        "completed",
        "failed",
        "canceled",
        "skipped",
        "reused",
    )
    assert {"completed", "failed", "canceled"} == FINISHED_RUN_STATUSES
    assert {"completed", "failed", "canceled", "skipped", "reused"} == FINISHED_STEP_STATUSES
    assert {"claimed", "started", "queued", "skipped", "missed"} == FIRE_OUTCOMES
    for constant in (RUN_STATUSES, STEP_STATUSES, FINISHED_RUN_STATUSES, FIRE_OUTCOMES):
        assert all(type(value) is str for value in constant)
    assert json.dumps([RunStatus.FAILED, StepStatus.REUSED, FireOutcome.MISSED]) == (
        '["failed", "reused", "missed"]'
    )
    assert f"{RunStatus.QUEUED}" == str(RunStatus.QUEUED) == "queued"


def test_records_read_back_hold_enums_and_render_plain_json(store: Store) -> None:
    run = store.create_run(
        pipeline="p",
        content_hash="h",
        experiment="p",
        parameters={},
        trigger="manual",
        steps=[("s", "S", "command")],
    )
    detail = store.get_run_detail(run.id)
    assert detail.run.status is RunStatus.QUEUED
    assert detail.attempts[0].status is StepStatus.PENDING
    data = detail.to_json()
    assert type(data["status"]) is str and type(data["steps"][0]["status"]) is str
    assert json.loads(json.dumps(data))["steps"][0]["status"] == "pending"
