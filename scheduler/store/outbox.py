"""The notify outbox: alert events waiting for their targets, one row per (event, target).

An event is written in the transaction of what caused it (``run_ended`` inside ``finish_run``,
``fires_missed`` inside the insert of missed fire records), so a crash can neither lose an alert
nor send one for something that was never recorded; the unique (event id, target key) makes a
second write of one event a no-op. The daemon's sender reads the due rows and marks each
delivered, retried later or given up. Where an event goes (``NotifyRoutes``) is set on the store
by the daemon; without routes (a foreground ``pipesched run``) nothing is written.

A row keeps the target as configured, its ``${{...}}`` secret references unresolved: the sender
resolves them when it sends, so no secret value is ever stored.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from scheduler.core.clock import Clock
from scheduler.definitions.operating import NotifyTarget, notify_from
from scheduler.store.models import FireRow, NotifyOutboxRow, PipelineVersion, RunRow
from scheduler.store.sessions import NO_SYNC, Sessions

MAX_EVENT_BYTES = 16 * 1024  # an alert, not a log: longer reasons are cut
MAX_TEXT_CHARS = 2000
MAX_KEPT_ROWS = 10_000  # delivered and given-up rows kept for inspection; the oldest go first
MISSED_TIMES_LISTED = 20  # nominal times named in one missed event (the newest)


@dataclass(frozen=True)
class NotifyRoutes:
    """Which targets hear of what: the config's, each schedule's and each pipeline's (a run's
    come with the definition it ran), and the web page of a run when the TCP API is on."""

    targets: tuple[NotifyTarget, ...] = ()
    schedules: Mapping[str, tuple[NotifyTarget, ...]] = field(default_factory=dict)
    pipelines: Mapping[str, tuple[NotifyTarget, ...]] = field(default_factory=dict)
    # schedule -> the pipeline it runs, as ``pipelines`` names it (NAME, or NAME@VERSION)
    schedule_pipelines: Mapping[str, str] = field(default_factory=dict)
    run_url: str | None = None  # "http://host:port/runs/" + run id
    # pipeline version id -> the targets its stored definition names: versions never change,
    # so each is read once, not at the end of every run.
    version_targets: dict[int, tuple[NotifyTarget, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def targets_for(
        self, event: str, schedule: str | None, pipeline: Sequence[NotifyTarget] = ()
    ) -> list[NotifyTarget]:
        """The targets that list ``event``; one target configured in several places once."""
        chosen: dict[str, NotifyTarget] = {}
        for target in (*self.targets, *self.schedules.get(schedule or "", ()), *pipeline):
            if event in target.on:
                chosen.setdefault(target_key(target), target)
        return list(chosen.values())


@dataclass(frozen=True)
class Notification:
    """One outbox row to send."""

    id: int
    event_id: str
    event: str
    target_key: str
    target: NotifyTarget
    payload: str
    attempts: int


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    failed: int


def target_key(target: NotifyTarget) -> str:
    """A target's identity (where and how it sends; not which events it takes)."""
    return hashlib.sha256(json.dumps(_destination(target), sort_keys=True).encode()).hexdigest()[
        :16
    ]


def target_json(target: NotifyTarget) -> dict[str, Any]:
    return {"on": list(target.on), **_destination(target)}


def target_from_json(raw: Mapping[str, Any]) -> NotifyTarget:
    return notify_from([dict(raw)])[0]


def _destination(target: NotifyTarget) -> dict[str, Any]:
    return {
        "command": None if target.command is None else list(target.command),
        "webhook": target.webhook,
        "secret": target.secret,
        "timeout": target.timeout,
        "retries": target.retries,
    }


def new_event(
    event: str,
    at: datetime,
    *,
    message: str,
    pipeline: str | None = None,
    schedule: str | None = None,
    run_id: str | None = None,
    status: str | None = None,
    reason: str | None = None,
    nominal_time: datetime | None = None,
    url: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An event as receivers get it, with a fresh id; long texts cut to keep it small."""
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "event": event,
        "at": at.isoformat(),
        "pipeline": pipeline,
        "schedule": schedule,
        "run_id": run_id,
        "status": status,
        "reason": _cut(reason),
        "message": _cut(message) or "",
    }
    if nominal_time is not None:
        body["nominal_time"] = nominal_time.isoformat()
    if url is not None:
        body["url"] = url
    body.update(extra)
    return body


def event_text(event: Mapping[str, Any]) -> str:
    """The event's JSON, at most ``MAX_EVENT_BYTES`` (extra fields dropped first)."""
    text = json.dumps(event, sort_keys=True)
    if len(text.encode()) <= MAX_EVENT_BYTES:
        return text
    core = {k: event.get(k) for k in ("id", "event", "at", "pipeline", "schedule", "run_id")}
    core["message"] = _cut(str(event.get("message") or ""), 500)
    return json.dumps(core, sort_keys=True)


def _cut(text: str | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def write_event(
    session: Session, event: Mapping[str, Any], targets: Iterable[NotifyTarget], now: datetime
) -> int:
    """Inside the caller's transaction: one outbox row per target, each due now; an (event,
    target) already recorded is left alone. Returns how many rows were new."""
    rows = {target_key(t): t for t in targets}
    if not rows:
        return 0
    event_id = str(event["id"])
    known = set(
        session.scalars(
            select(NotifyOutboxRow.target_key).where(
                NotifyOutboxRow.event_id == event_id, NotifyOutboxRow.target_key.in_(list(rows))
            )
        )
    )
    text = event_text(event)
    new = [key for key in rows if key not in known]
    session.add_all(
        NotifyOutboxRow(
            event_id=event_id,
            event=str(event["event"]),
            target_key=key,
            target=target_json(rows[key]),
            payload=text,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
        for key in new
    )
    return len(new)


def run_ended(session: Session, routes: NotifyRoutes | None, run_id: str, now: datetime) -> None:
    """Inside ``finish_run``'s transaction: ``failed`` for a run that ended failed;
    ``recovered`` for a completed run whose schedule's (or, unscheduled, pipeline's) previous
    finished run failed."""
    if routes is None:
        return
    run = session.get(RunRow, run_id)
    if run is None or run.status not in ("failed", "completed"):
        return
    event = "failed" if run.status == "failed" else "recovered"
    targets = routes.targets_for(event, run.schedule, _pipeline_targets(session, routes, run))
    if not targets or (event == "recovered" and not _previous_failed(session, run)):
        return
    nominal = _nominal_time(session, run)
    what = f"schedule '{run.schedule}'" if run.schedule else f"pipeline '{run.pipeline}'"
    message = (
        f"run {run.id} of pipeline '{run.pipeline}' failed: {run.status_reason or 'a step failed'}"
        if event == "failed"
        else f"run {run.id} of {what} completed after a failed run"
    )
    body = new_event(
        event,
        now,
        message=message,
        pipeline=run.pipeline,
        schedule=run.schedule,
        run_id=run.id,
        status=run.status,
        reason=run.status_reason,
        nominal_time=nominal,
        url=None if routes.run_url is None else routes.run_url + run.id,
    )
    write_event(session, body, targets, now)


def fires_missed(
    session: Session,
    routes: NotifyRoutes | None,
    schedule: str,
    times: Sequence[datetime],
    reason: str | None,
    now: datetime,
) -> None:
    """Inside the transaction that recorded ``times`` missed: one ``missed`` event for them all
    (the newest named as ``nominal_time``, up to ``MISSED_TIMES_LISTED`` listed)."""
    if routes is None or not times:
        return
    served = routes.schedule_pipelines.get(schedule)  # NAME, or NAME@VERSION
    targets = routes.targets_for("missed", schedule, routes.pipelines.get(served or "", ()))
    pipeline = None if served is None else served.partition("@")[0]
    if not targets:
        return
    ordered = sorted(times)
    count = len(ordered)
    message = (
        f"schedule '{schedule}' missed {count} fire{'s' if count != 1 else ''} "
        f"({reason or 'missed'}), the latest at {ordered[-1].isoformat()}"
    )
    body = new_event(
        "missed",
        now,
        message=message,
        pipeline=pipeline,
        schedule=schedule,
        status="missed",
        reason=reason,
        nominal_time=ordered[-1],
        count=count,
        nominal_times=[t.isoformat() for t in ordered[-MISSED_TIMES_LISTED:]],
    )
    write_event(session, body, targets, now)


def _previous_failed(session: Session, run: RunRow) -> bool:
    same = RunRow.schedule == run.schedule if run.schedule else RunRow.pipeline == run.pipeline
    previous = session.scalar(
        select(RunRow.status)
        .where(
            same,
            RunRow.id < run.id,
            RunRow.status.in_(("completed", "failed")),
            RunRow.finished_at.is_not(None),
        )
        .order_by(RunRow.id.desc())  # run ids sort by creation time
        .limit(1)
    )
    return previous == "failed"


def _pipeline_targets(
    session: Session, routes: NotifyRoutes, run: RunRow
) -> tuple[NotifyTarget, ...]:
    version = run.pipeline_version_id
    if version is None:
        return ()
    if version not in routes.version_targets:
        definition = session.scalar(
            select(PipelineVersion.definition).where(PipelineVersion.id == version)
        )
        raw = (definition or {}).get("notify") or []
        routes.version_targets[version] = notify_from(raw) if isinstance(raw, list) else ()
    return routes.version_targets[version]


def _nominal_time(session: Session, run: RunRow) -> datetime | None:
    if run.schedule is None:
        return None
    return session.scalar(
        select(FireRow.nominal_time)
        .where(FireRow.schedule == run.schedule, FireRow.run_id == run.id)
        .order_by(FireRow.id.desc())
        .limit(1)
    )


class OutboxRepository:
    """The sender's side of the outbox, and events recorded on their own (a store outage, kept
    aside while the store could not be written; a ``notify test``)."""

    def __init__(self, sessions: Sessions, clock: Clock) -> None:
        self._sessions, self._clock = sessions, clock
        self.routes: NotifyRoutes | None = None  # read by the writes of runs and fires

    def add_notification(self, event: Mapping[str, Any], targets: Sequence[NotifyTarget]) -> int:
        """Record ``event`` for ``targets`` (insert-or-ignore by event id and target); returns
        how many rows were new."""
        with self._sessions.write() as session:
            return write_event(session, event, targets, self._clock.now())

    def add_delivered(self, event: Mapping[str, Any], targets: Sequence[NotifyTarget]) -> int:
        """Record ``event`` as already delivered to ``targets`` (it was sent while the store
        could not be written)."""
        now = self._clock.now()
        with self._sessions.write() as session:
            new = write_event(session, event, targets, now)
            session.execute(
                update(NotifyOutboxRow)
                .where(NotifyOutboxRow.event_id == str(event["id"]))
                .where(NotifyOutboxRow.target_key.in_([target_key(t) for t in targets]))
                .values(delivered_at=now, attempts=NotifyOutboxRow.attempts + 1),
                execution_options=NO_SYNC,
            )
            return new

    def due_notifications(self, limit: int, exclude: Sequence[int] = ()) -> list[Notification]:
        """Rows neither delivered nor given up whose next attempt is due, oldest first."""
        with self._sessions.read() as session:
            statement = (
                select(NotifyOutboxRow)
                .where(
                    NotifyOutboxRow.delivered_at.is_(None),
                    NotifyOutboxRow.failed_at.is_(None),
                    NotifyOutboxRow.next_attempt_at <= self._clock.now(),
                )
                .order_by(NotifyOutboxRow.next_attempt_at, NotifyOutboxRow.id)
                .limit(limit)
            )
            if exclude:
                statement = statement.where(NotifyOutboxRow.id.not_in(list(exclude)))
            return [
                Notification(
                    id=row.id,
                    event_id=row.event_id,
                    event=row.event,
                    target_key=row.target_key,
                    target=target_from_json(row.target),
                    payload=row.payload,
                    attempts=row.attempts,
                )
                for row in session.scalars(statement)
            ]

    def notification_sent(
        self, notification_id: int, *, error: str | None, retry_after: float | None
    ) -> None:
        """The outcome of one attempt: delivered (no error), tried again after
        ``retry_after`` seconds, or given up (an error and no retry)."""
        now = self._clock.now()
        values: dict[str, Any] = {"attempts": NotifyOutboxRow.attempts + 1, "last_error": error}
        if error is None:
            values["delivered_at"] = now
        elif retry_after is None:
            values["failed_at"] = now
        else:
            values["next_attempt_at"] = now + timedelta(seconds=retry_after)
        with self._sessions.write() as session:
            session.execute(
                update(NotifyOutboxRow)
                .where(NotifyOutboxRow.id == notification_id)
                .values(**values),
                execution_options=NO_SYNC,
            )

    def prune_notifications(self, keep: int = MAX_KEPT_ROWS) -> int:
        """Delete delivered and given-up rows beyond the newest ``keep``; returns how many."""
        with self._sessions.write() as session:
            settled = (NotifyOutboxRow.delivered_at.is_not(None)) | (
                NotifyOutboxRow.failed_at.is_not(None)
            )
            cutoff = session.scalar(
                select(NotifyOutboxRow.id)
                .where(settled)
                .order_by(NotifyOutboxRow.id.desc())
                .offset(keep)
                .limit(1)
            )
            if cutoff is None:
                return 0
            result = session.execute(
                delete(NotifyOutboxRow).where(settled, NotifyOutboxRow.id <= cutoff),
                execution_options=NO_SYNC,
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def outbox_counts(self) -> OutboxCounts:
        with self._sessions.read() as session:
            pending = session.scalar(
                select(func.count())
                .select_from(NotifyOutboxRow)
                .where(NotifyOutboxRow.delivered_at.is_(None), NotifyOutboxRow.failed_at.is_(None))
            )
            failed = session.scalar(
                select(func.count())
                .select_from(NotifyOutboxRow)
                .where(NotifyOutboxRow.failed_at.is_not(None))
            )
            return OutboxCounts(pending=int(pending or 0), failed=int(failed or 0))

    def notifications(self, event_id: str | None = None) -> list[dict[str, Any]]:
        """Every row (of one event), oldest first: for tests and inspection."""
        with self._sessions.read() as session:
            statement = select(NotifyOutboxRow).order_by(NotifyOutboxRow.id)
            if event_id is not None:
                statement = statement.where(NotifyOutboxRow.event_id == event_id)
            return [
                {
                    "id": row.id,
                    "event_id": row.event_id,
                    "event": row.event,
                    "target_key": row.target_key,
                    "attempts": row.attempts,
                    "delivered_at": row.delivered_at,
                    "failed_at": row.failed_at,
                    "last_error": row.last_error,
                    "payload": json.loads(row.payload),
                }
                for row in session.scalars(statement)
            ]
