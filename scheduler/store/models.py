"""The tables of pipesched's database, as SQLAlchemy 2 declarative models.

Nothing outside the store package sees these classes: queries turn rows into the plain records
of ``scheduler.store.records``. Migrations in ``migrations/versions`` must build exactly this schema
(a test compares them with Alembic's autogenerate).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Named constraints, so migrations can refer to them and both backends agree on the names.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on every backend.

    PostgreSQL keeps the instant (timestamptz); SQLite keeps a naive string, so values are
    stored as naive UTC there and given their tzinfo back when read. A naive datetime going in
    is a bug (nothing but the clock makes times), so it is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class PipelineVersion(Base):
    """A pipeline definition as it was run or published: the working copy (version null) is
    recorded once per content hash."""

    __tablename__ = "pipeline_versions"
    __table_args__ = (
        UniqueConstraint("pipeline", "version", "content_hash"),
        # NULLs are distinct in a unique constraint, so the working copy needs its own index.
        Index(
            "uq_pipeline_versions_working_copy",
            "pipeline",
            "content_hash",
            unique=True,
            sqlite_where="version IS NULL",
            postgresql_where="version IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline: Mapped[str]
    version: Mapped[str | None]
    content_hash: Mapped[str]
    definition: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index(None, "pipeline", "id"),
        Index(None, "status", "id"),
        Index(None, "experiment", "id"),  # Experiment.get_runs(), GET /api/v1/runs?experiment=
        Index(None, "schedule", "id"),  # the web view's runs of one schedule
        Index(None, "trigger_kind", "id"),  # ... of one kind of trigger
        Index(None, "trigger", "id"),  # ... of one whole trigger
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    pipeline: Mapped[str]
    version: Mapped[str | None]
    pipeline_version_id: Mapped[int | None] = mapped_column(ForeignKey("pipeline_versions.id"))
    content_hash: Mapped[str]
    experiment: Mapped[str]
    status: Mapped[str]
    status_reason: Mapped[str | None]
    recovered: Mapped[bool] = mapped_column(default=False)
    trigger: Mapped[str]
    # What the trigger says before its first ':' (``schedule`` of ``schedule:nightly``): the
    # runs page filters by it through an index, which a LIKE on ``trigger`` cannot use.
    trigger_kind: Mapped[str | None]
    schedule: Mapped[str | None]
    parameters: Mapped[dict[str, Any]]
    owner_host: Mapped[str | None]
    owner_pid: Mapped[int | None]
    owner_start_ticks: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The time the run stands for (a schedule's fire time, else when it was requested), its
    # data interval (null but for schedule runs) and the schedule's zone they are shown in.
    nominal_time: Mapped[datetime | None]
    interval_start: Mapped[datetime | None]
    interval_end: Mapped[datetime | None]
    nominal_zone: Mapped[str | None]


class StepRunRow(Base):
    """One attempt of one step: a retry is a new row."""

    __tablename__ = "step_runs"
    __table_args__ = (
        UniqueConstraint("run_id", "step", "attempt"),
        Index(None, "fingerprint", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[str]
    attempt: Mapped[int]
    display_name: Mapped[str]
    type: Mapped[str]
    status: Mapped[str]
    status_reason: Mapped[str | None]
    exit_code: Mapped[int | None]
    pid: Mapped[int | None]
    pgid: Mapped[int | None]
    proc_start_ticks: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    log_path: Mapped[str | None]
    workdir: Mapped[str | None]
    fingerprint: Mapped[str | None]
    reused_from: Mapped[str | None]
    outputs: Mapped[dict[str, Any]]


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index(None, "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[str]
    attempt: Mapped[int]
    name: Mapped[str]
    kind: Mapped[str]
    value: Mapped[Any] = mapped_column(JSON)
    logged_at: Mapped[datetime]


class ScheduleRow(Base):
    """What the store remembers of a schedule between restarts: when it was first registered
    (intervals count from it), an enable/disable override, and its last fire."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(primary_key=True)
    source: Mapped[str]  # file | api
    registered_at: Mapped[datetime]
    override: Mapped[bool | None]  # True enabled, False disabled, None: the definition decides
    definition: Mapped[dict[str, Any] | None]  # for source=api
    last_fire_time: Mapped[datetime | None]
    last_outcome: Mapped[str | None]
    last_run_id: Mapped[str | None]
    schedule_id: Mapped[str | None]  # stable: kept by an update, even across a rename


class FireRow(Base):
    """One fire: a (schedule, nominal time) or a dropped file (schedule, path, size, mtime).
    Written before its run starts; the unique constraints make "fired once" the database's job."""

    __tablename__ = "fires"
    __table_args__ = (
        UniqueConstraint("schedule", "nominal_time"),
        UniqueConstraint("schedule", "path", "size", "mtime_ns"),
        Index(None, "schedule", "id"),
        Index(None, "outcome"),
        # A schedule's fires of one outcome, newest settled first: a file-drop schedule's
        # last file, its claims and its skipped files, without reading its whole ledger.
        Index(None, "schedule", "outcome", "updated_at", "id"),
        Index(None, "run_id"),  # a prune's deletes, a few hundred runs at a time
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule: Mapped[str]
    nominal_time: Mapped[datetime | None]
    path: Mapped[str | None]
    size: Mapped[int | None] = mapped_column(BigInteger)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str]  # claimed | started | queued | skipped | missed
    epoch: Mapped[int | None] = mapped_column(BigInteger)  # the leader's, in standby mode
    reason: Mapped[str | None]
    run_id: Mapped[str | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PrunedCountRow(Base):
    """How many rows prunes deleted: runs per (pipeline, status), fires per (schedule,
    outcome). ``/metrics`` adds them to its counts of the rows, so its counters never go down."""

    __tablename__ = "pruned_counts"

    kind: Mapped[str] = mapped_column(primary_key=True)  # runs | fires
    name: Mapped[str] = mapped_column(primary_key=True)  # the pipeline, or the schedule
    outcome: Mapped[str] = mapped_column(primary_key=True)  # the run's status, the fire's outcome
    count: Mapped[int] = mapped_column(BigInteger)


class PublishedRow(Base):
    """A published pipeline version: an immutable snapshot under ``snapshot_dir``. The label is
    unique per pipeline, so publishing one twice is the database's refusal, not a race."""

    __tablename__ = "published_pipelines"
    __table_args__ = (UniqueConstraint("pipeline", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline: Mapped[str]
    version: Mapped[str]
    description: Mapped[str | None]
    content_hash: Mapped[str]
    snapshot_dir: Mapped[str]
    published_at: Mapped[datetime]


class EndpointRow(Base):
    """A pipeline endpoint (Azure's PipelineEndpoint), by name (``pipeline``: a pipeline's own
    endpoint has its name): the published version it runs, ``default_version`` of
    ``default_pipeline`` (null: of the endpoint's name), and an id a rename keeps."""

    __tablename__ = "pipeline_endpoints"

    pipeline: Mapped[str] = mapped_column(primary_key=True)
    default_version: Mapped[str]
    updated_at: Mapped[datetime]
    endpoint_id: Mapped[str | None]
    description: Mapped[str | None]
    default_pipeline: Mapped[str | None]


class EndpointVersionRow(Base):
    """Version ``number`` (0, 1, 2... in the order they were added) of an endpoint: a
    published pipeline, of the endpoint's name or another."""

    __tablename__ = "endpoint_versions"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "number"),
        UniqueConstraint("endpoint_id", "pipeline", "version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[str]
    number: Mapped[int]
    pipeline: Mapped[str]
    version: Mapped[str]
    added_at: Mapped[datetime]


class TokenRow(Base):
    """An API token, kept as a SHA-256 of the secret; ``token_id`` is its public lookup part.
    A name is unique among live tokens, so a revoked name can be used again."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("token_id"),
        Index(
            "uq_api_tokens_live_name",
            "name",
            unique=True,
            sqlite_where="revoked_at IS NULL",
            postgresql_where="revoked_at IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    token_id: Mapped[str]
    token_hash: Mapped[str]
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ModelRow(Base):
    """One version of a registered model. Versions count 1, 2, 3 per name; the pair is unique,
    and the files live in the registry's folder under ``<name>/<version>/`` (``path``)."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        Index(None, "run_id"),  # the models a run registered (pipesched show)
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    version: Mapped[int]
    path: Mapped[str]
    tags: Mapped[dict[str, Any]]
    properties: Mapped[dict[str, Any]]
    description: Mapped[str | None]
    run_id: Mapped[str | None]
    step: Mapped[str | None]
    created_at: Mapped[datetime]


class LeadershipRow(Base):
    """Who leads the daemons of this store (one row, id 1): the epoch, raised by each takeover,
    and the leader's lease, renewed every heartbeat on the database's own clock. In standby
    mode every write first checks the epoch it was made under (``Sessions.write``)."""

    __tablename__ = "leadership"

    id: Mapped[int] = mapped_column(primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str | None]
    host: Mapped[str | None]
    pid: Mapped[int | None]
    since: Mapped[datetime | None]
    api_url: Mapped[str | None]
    lease_until: Mapped[datetime | None]


class DaemonHeartbeatRow(Base):
    """A daemon's heartbeat, leader or standby: what ``pipesched status`` lists."""

    __tablename__ = "daemon_heartbeats"

    name: Mapped[str] = mapped_column(primary_key=True)  # HOST:PID:STARTED
    host: Mapped[str]
    pid: Mapped[int]
    started_at: Mapped[datetime]
    role: Mapped[str]  # leader | standby
    epoch: Mapped[int] = mapped_column(BigInteger)
    heartbeat_at: Mapped[datetime]
    lease_seconds: Mapped[float] = mapped_column(Float)
    schema_revision: Mapped[str]
    version: Mapped[str]
    api_url: Mapped[str | None]


class StoreInfoRow(Base):
    """A fact about the store itself, by key: ``migrated_by`` (the pipesched version that last
    migrated it), ``migrated_at``, ``schema_revision``."""

    __tablename__ = "store_info"

    key: Mapped[str] = mapped_column(primary_key=True)
    value: Mapped[str]


class NotifyOutboxRow(Base):
    """One alert event for one target, written in the transaction of what caused it (a run
    ending failed, a fire recorded missed) and sent by the daemon until delivered or given up.
    ``target`` keeps the target as configured, its secret references unresolved."""

    __tablename__ = "notify_outbox"
    __table_args__ = (
        UniqueConstraint("event_id", "target_key"),  # an event recorded twice is sent once
        Index(None, "delivered_at", "failed_at", "next_attempt_at"),  # the due ones
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str]
    event: Mapped[str]  # failed | missed | store_unwritable | recovered
    target_key: Mapped[str]
    target: Mapped[dict[str, Any]]
    payload: Mapped[str]  # the event's JSON, as sent
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]  # given up after the target's retries
    last_error: Mapped[str | None]


class BackfillRow(Base):
    """A backfill: every nominal time of one schedule in ``[range_from, range_to]``, run in
    order at most ``max_concurrent`` at once. A record, so a restarted daemon carries on; the
    owner is the process running it (a daemon, or a foreground ``pipesched backfill``)."""

    __tablename__ = "backfills"
    __table_args__ = (Index(None, "status"),)

    id: Mapped[str] = mapped_column(primary_key=True)  # a run-style id: sortable by time
    schedule: Mapped[str]
    range_from: Mapped[datetime]
    range_to: Mapped[datetime]
    max_concurrent: Mapped[int]
    rerun: Mapped[bool]
    status: Mapped[str]  # running | completed | canceled | failed
    reason: Mapped[str | None]
    requested_by: Mapped[str | None]
    owner_host: Mapped[str | None]
    owner_pid: Mapped[int | None]
    owner_start_ticks: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class BackfillTimeRow(Base):
    """One nominal time of a backfill and what became of it: ``pending`` until its run is
    recorded (the run id is chosen first, so a restart finds the run it made, or makes it with
    that id), then ``started`` and the run's end; or ``skipped`` with the reason."""

    __tablename__ = "backfill_times"
    __table_args__ = (Index(None, "run_id"),)

    backfill_id: Mapped[str] = mapped_column(
        ForeignKey("backfills.id", ondelete="CASCADE"), primary_key=True
    )
    nominal_time: Mapped[datetime] = mapped_column(primary_key=True)
    outcome: Mapped[str]  # pending | started | skipped | completed | failed | canceled
    reason: Mapped[str | None]
    run_id: Mapped[str | None]
    updated_at: Mapped[datetime]
