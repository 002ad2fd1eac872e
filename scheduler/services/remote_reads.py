"""Run history read from a daemon's REST API (``pipesched --url``): the same JSON objects the
local reads print, and the records the tables are drawn from, rebuilt from that JSON.

What a daemon's answer leaves out is left out of the records too: a run's owner (so no ``owner
gone`` mark: that is for the daemon's host to tell) and a step's working folder (so ``show`` lists
no files of it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from scheduler.core.errors import NotFound
from scheduler.core.runtimes import RunTimes
from scheduler.services.daemon_http import API, RemoteClient, run_path
from scheduler.store.records import (
    FireOutcome,
    FireRecord,
    Metric,
    ModelRecord,
    RunDetail,
    RunRecord,
    RunStatus,
    StepAttempt,
    StepStatus,
)

PAGE = 1000  # the most runs one GET /api/v1/runs gives


def remote_runs(
    client: RemoteClient,
    *,
    pipeline: str | None = None,
    statuses: Sequence[str] = (),
    limit: int = 20,
) -> list[dict[str, Any]]:
    """``runs --json`` objects, newest first, paged through the API (``limit`` 0: all)."""
    found: list[dict[str, Any]] = []
    before: str | None = None
    while True:
        want = PAGE if limit == 0 else min(PAGE, limit - len(found))
        query: list[tuple[str, str]] = [("limit", str(want))]
        query += [("pipeline", pipeline)] if pipeline is not None else []
        query += [("status", status) for status in statuses]
        query += [("before", before)] if before is not None else []
        page = client.get(f"{API}/runs?{urlencode(query)}")
        found.extend(page)
        if len(page) < want or (limit and len(found) >= limit):
            return found
        before = page[-1]["id"]


def remote_run(client: RemoteClient, ref: str) -> dict[str, Any]:
    """The ``show --json`` object of a run (any unique prefix of its id, or ``latest``)."""
    answer: dict[str, Any] = client.get(run_path(ref))
    return answer


def remote_metrics(
    client: RemoteClient, pipeline: str, *, metric: str | None, last: int
) -> list[dict[str, Any]]:
    """The ``metrics --json`` objects of a pipeline's last runs."""
    query = urlencode([("last", str(last))] + ([("metric", metric)] if metric else []))
    answer: list[dict[str, Any]] = client.get(
        f"{API}/pipelines/{quote(pipeline, safe='')}/metrics?{query}"
    )
    return answer


def remote_fires(client: RemoteClient, schedule: str, *, limit: int) -> list[dict[str, Any]]:
    """The ``fires --json`` objects of one schedule, newest first."""
    answer: list[dict[str, Any]] = client.get(
        f"{API}/schedules/{quote(schedule, safe='')}/fires?limit={limit}"
    )
    return answer


def remote_models(
    client: RemoteClient, name: str | None, *, tags: Sequence[str], latest: bool
) -> list[dict[str, Any]]:
    """``models --json`` objects, by name, newest version first."""
    query: list[tuple[str, str]] = [("name", name)] if name is not None else []
    query += [("tag", tag) for tag in tags]
    query += [("latest", "true")] if latest else []
    answer: list[dict[str, Any]] = client.get(f"{API}/models?{urlencode(query)}")
    return answer


def remote_model(client: RemoteClient, ref: str) -> dict[str, Any]:
    """One model version by ``NAME[:VERSION]`` (the latest without a version)."""
    name, colon, version = ref.partition(":")
    path = f"{API}/models/{quote(name, safe='')}"
    if colon:
        path += f"/{quote(version, safe='')}"
    answer: dict[str, Any] = client.get(path)
    return answer


def remote_log(
    client: RemoteClient,
    run_id: str,
    step: str,
    *,
    attempt: int | None,
    lines: int | None,
    follow: bool,
) -> Iterator[bytes]:
    """A step's log as the daemon sends it; with ``follow``, until the step ends."""
    query: list[tuple[str, str]] = []
    query += [("attempt", str(attempt))] if attempt is not None else []
    query += [("tail", str(lines))] if lines is not None else []
    query += [("follow", "true")] if follow else []
    path = run_path(run_id, f"steps/{quote(step, safe='')}/logs")
    return client.stream(path + (f"?{urlencode(query)}" if query else ""), timeout=None)


# -- records rebuilt from the API's JSON ------------------------------------------------------------


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _required_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def run_from_json(data: dict[str, Any]) -> RunRecord:
    return RunRecord(
        id=data["id"],
        pipeline=data["pipeline"],
        version=data.get("version"),
        content_hash=data.get("content_hash", ""),
        experiment=data.get("experiment", ""),
        status=RunStatus(data["status"]),
        status_reason=data.get("status_reason"),
        recovered=bool(data.get("recovered")),
        trigger=data.get("trigger", ""),
        schedule=data.get("schedule"),
        created_at=_required_time(data["created_at"]),
        started_at=_time(data.get("started_at")),
        finished_at=_time(data.get("finished_at")),
        parameters=dict(data.get("parameters") or {}),
        times=_times_from_json(data),
    )


def _times_from_json(data: dict[str, Any]) -> RunTimes | None:
    """The JSON gives UTC instants without the schedule's zone: shown in UTC."""
    nominal = _time(data.get("nominal_time"))
    if nominal is None:
        return None
    start, end = _time(data.get("interval_start")), _time(data.get("interval_end"))
    if start is None or end is None:
        start = end = None
    return RunTimes(nominal_time=nominal, interval_start=start, interval_end=end)


def detail_from_json(data: dict[str, Any]) -> RunDetail:
    """The run, one record per attempt that started (and the latest one), and its metrics as
    ``show`` groups them again."""
    run = run_from_json(data)
    attempts: list[StepAttempt] = []
    metrics: list[Metric] = []
    for step in data.get("steps", []):
        name = step["name"]
        for tried in step.get("attempts", []):
            if tried["attempt"] != step["attempt"]:
                attempts.append(
                    StepAttempt(
                        run_id=run.id,
                        step=name,
                        attempt=tried["attempt"],
                        display_name=step["display_name"],
                        type=step["type"],
                        status=StepStatus(tried["status"]),
                        exit_code=tried.get("exit_code"),
                        started_at=_time(tried.get("started_at")),
                        finished_at=_time(tried.get("finished_at")),
                    )
                )
        attempts.append(
            StepAttempt(
                run_id=run.id,
                step=name,
                attempt=step["attempt"],
                display_name=step["display_name"],
                type=step["type"],
                status=StepStatus(step["status"]),
                status_reason=step.get("status_reason"),
                exit_code=step.get("exit_code"),
                started_at=_time(step.get("started_at")),
                finished_at=_time(step.get("finished_at")),
                reused_from=step.get("reused_from"),
                outputs=dict(step.get("outputs") or {}),
            )
        )
        for metric_name, value in (step.get("metrics") or {}).items():
            kind = "list" if isinstance(value, list) else "scalar"
            metrics.append(
                Metric(
                    step=name,
                    attempt=step["attempt"],
                    name=metric_name,
                    kind=kind,
                    value=value,
                    logged_at=run.created_at,
                )
            )
    return RunDetail(run=run, attempts=attempts, metrics=metrics)


def model_from_json(data: dict[str, Any]) -> ModelRecord:
    return ModelRecord(
        name=data["name"],
        version=data["version"],
        path=data["path"],
        tags=dict(data.get("tags") or {}),
        properties=dict(data.get("properties") or {}),
        description=data.get("description"),
        run_id=data.get("run_id"),
        step=data.get("step"),
        created_at=_required_time(data["created_at"]),
    )


def fire_from_json(data: dict[str, Any]) -> FireRecord:
    return FireRecord(
        schedule=data["schedule"],
        nominal_time=_time(data.get("nominal_time")),
        path=data.get("path"),
        outcome=FireOutcome(data["outcome"]),
        reason=data.get("reason"),
        run_id=data.get("run_id"),
    )


def remote_run_ref(client: RemoteClient, ref: str, pipeline: str | None) -> str:
    """``ref`` as the daemon at a URL resolves it, except ``latest`` of one pipeline, which is
    the newest of that pipeline's runs it lists."""
    if pipeline is None or ref.strip().lower() != "latest":
        return ref
    newest = remote_runs(client, pipeline=pipeline, statuses=(), limit=1)
    if not newest:
        raise NotFound(
            f"there is no run of pipeline {pipeline!r} yet", hint="start one with: pipesched run"
        )
    return str(newest[0]["id"])
