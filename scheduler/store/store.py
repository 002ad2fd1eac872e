"""The store: the one object through which pipesched reads and writes its database.

``Store.open(url)`` migrates the database to the current schema and composes one repository per
area — ``runs`` (runs, step attempts, metrics), ``fires`` (time fire records), ``ledger``
(dropped files), ``schedules``, ``published``, ``tokens``, ``models`` (the model registry),
``figures`` and ``upkeep`` (can the store be written now, the SQLite WAL kept small) — over one
engine and one clock. A call that fails on the database itself (locked past busy_timeout, disk
full, I/O error) marks ``store.health`` unwritable with the driver's reason; the next
``probe_write`` that succeeds clears it. ``fence(reason)`` refuses every write with
``StoreUnavailable`` (reads go on, and health says ``reason``) until ``unfence()``. Every public
method but ``open``, ``close``, ``fence`` and ``unfence`` is one short transaction of one
repository, and first asserts that it is not running on an event loop's thread
(``core.loopguard``): the daemon hands store calls to a worker thread. Callers get plain
records, never ORM objects.
Consumers that need only part of the store depend on a Protocol of ``store.protocols``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.loopguard import assert_off_loop
from scheduler.store.backfills import BackfillRepository
from scheduler.store.engine import make_engine
from scheduler.store.errors import StoreUnavailable
from scheduler.store.figures import FiguresRepository
from scheduler.store.fire_records import FireRepository
from scheduler.store.health import StoreHealth, UpkeepRepository, failure_reason
from scheduler.store.leadership import LeadershipRepository
from scheduler.store.ledger import LedgerRepository
from scheduler.store.migrate import ensure_schema, schema_behind
from scheduler.store.model_registry import ModelRepository
from scheduler.store.outbox import NotifyRoutes, OutboxRepository
from scheduler.store.protocols import (
    DispatchStore,
    ExecutorStore,
    FileLedgerStore,
    FireStore,
    ModelStore,
    RecoveryStore,
)
from scheduler.store.published import PublishedRepository
from scheduler.store.retention import RetentionRepository
from scheduler.store.runs import RunRepository
from scheduler.store.schedules import ScheduleRepository
from scheduler.store.sessions import Sessions
from scheduler.store.tokens import TokenRepository

R = TypeVar("R")
P = ParamSpec("P")
T = TypeVar("T")


class _Delegate(Generic[R, P, T]):
    """A facade method: the repository method of the same name, called on the store's
    repository ``area`` after ``assert_off_loop("store.<name>")``. Typed as that method, so
    callers and Protocols see the repository's own signature. The bound method is made once
    per store and kept in its ``__dict__``, which later lookups find first."""

    def __init__(self, area: str, method: Callable[Concatenate[R, P], T]) -> None:
        self._area, self._method = area, method
        self._what = f"store.{method.__name__}"
        signature = inspect.signature(method)
        self._signature = signature.replace(parameters=list(signature.parameters.values())[1:])

    @overload
    def __get__(self, store: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, store: Store, owner: type | None = None) -> Callable[P, T]: ...
    def __get__(self, store: Store | None, owner: type | None = None) -> Self | Callable[P, T]:
        if store is None:
            return self
        repository: R = getattr(store, self._area)
        method, what = self._method, self._what

        health, sessions = store.health, store._sessions

        @functools.wraps(method)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            assert_off_loop(what)
            try:
                return method(repository, *args, **kwargs)
            except OperationalError as exc:  # locked, disk full, I/O error: not a caller's bug
                # While fenced, the fence is the reason to give: it outlasts the failure.
                health.failed(sessions.fenced or failure_reason(exc))
                raise
            except StoreUnavailable as exc:  # fenced off
                health.failed(exc.message)
                raise

        call.__signature__ = self._signature  # type: ignore[attr-defined]
        store.__dict__[method.__name__] = call
        return call


class _FencedUpkeep(UpkeepRepository):
    """Upkeep whose write probe fails while the store's writes are fenced off: the database
    itself may well take a write, but this store must not send one."""

    def __init__(self, engine: Engine, health: StoreHealth, sessions: Sessions) -> None:
        super().__init__(engine, health)
        self._sessions = sessions

    def probe_write(self) -> str | None:
        """Open a write transaction and roll it back; the reason the store cannot be written
        (the fence's reason while it is fenced off), or None. Marks the store's health."""
        if (reason := self._sessions.fenced) is not None:
            self._health.failed(reason)
            return reason
        return super().probe_write()


class Store:
    """pipesched's database. ``Store.open(url)`` migrates it to the current schema first."""

    def __init__(self, url: str, engine: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.url = url
        # Public for the store's own tests and tools; everything else uses the methods.
        self.engine = engine
        self._sessions = sessions = Sessions(engine)
        self.outbox = OutboxRepository(sessions, clock)
        self.runs = RunRepository(sessions, clock, self.outbox)
        self.fires = FireRepository(sessions, clock, self.outbox)
        self.ledger = LedgerRepository(sessions, clock)
        self.schedules = ScheduleRepository(sessions, clock)
        self.published = PublishedRepository(sessions, clock)
        self.tokens = TokenRepository(sessions, clock)
        self.models = ModelRepository(sessions, clock)
        self.figures = FiguresRepository(sessions)
        self.leaders = LeadershipRepository(sessions)
        self.retention = RetentionRepository(sessions)
        self.backfills = BackfillRepository(sessions, clock)
        # Whether the store can be written now: set by probe_write and by any call that fails
        # on the database itself; read from any thread (the API's /healthz reads it on the loop).
        self.health = StoreHealth()
        self.upkeep = _FencedUpkeep(engine, self.health, sessions)

    @classmethod
    def open(cls, url: str, *, clock: Clock = SYSTEM_CLOCK, migrate: bool = True) -> Store:
        """The store at ``url``, migrated to this pipesched's schema first unless ``migrate``
        is False (a standby daemon: only a leader migrates; see ``migrate_now``)."""
        # Not guarded, like close(): the daemon opens its store once, before any timer runs.
        engine = make_engine(url)
        try:
            if migrate:
                ensure_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(url, engine, clock)

    def schema_behind(self) -> int:
        """0 when the database is at this pipesched's schema, above 0 when it is older, below
        0 when a newer pipesched wrote it."""
        return schema_behind(self.engine)

    def migrate_now(self) -> None:
        """Bring the database to this pipesched's schema (a new leader, before it recovers)."""
        ensure_schema(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def fence(self, reason: str) -> None:
        """Refuse every write with ``StoreUnavailable(reason)`` until ``unfence()``; reads go
        on, and ``health`` says ``reason`` meanwhile. The daemon fences its store while it may
        not hold the store's lock. Callable from any thread (no transaction)."""
        self._sessions.fence(reason)
        self.health.failed(reason)

    def lead(self, epoch: int | None) -> None:
        """Refuse, in the database, every write made after ``epoch`` is over: a leader among
        standby daemons calls it once it has taken the lead (None: no such check)."""
        self._sessions.lead(epoch)

    def unfence(self) -> None:
        """Let writes through again; ``health`` clears at the next ``probe_write`` that
        succeeds."""
        self._sessions.unfence()

    def route_notifications(self, routes: NotifyRoutes | None) -> None:
        """Who hears of failed runs and missed fires from now on (None: nobody; the events are
        then not recorded). Callable from any thread (no transaction)."""
        self.outbox.routes = routes

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.engine.url!r})"  # the URL's repr hides a password

    # -- runs, step attempts, metrics ---------------------------------------------------------
    create_run = _Delegate("runs", RunRepository.create_run)
    start_run = _Delegate("runs", RunRepository.start_run)
    finish_run = _Delegate("runs", RunRepository.finish_run)
    mark_recovered = _Delegate("runs", RunRepository.mark_recovered)
    begin_attempt = _Delegate("runs", RunRepository.begin_attempt)
    set_attempt_process = _Delegate("runs", RunRepository.set_attempt_process)
    end_attempt = _Delegate("runs", RunRepository.end_attempt)
    mark_step = _Delegate("runs", RunRepository.mark_step)
    record_reuse = _Delegate("runs", RunRepository.record_reuse)
    add_metrics = _Delegate("runs", RunRepository.add_metrics)
    find_reusable = _Delegate("runs", RunRepository.find_reusable)
    resolve_run_id = _Delegate("runs", RunRepository.resolve_run_id)
    get_run = _Delegate("runs", RunRepository.get_run)
    get_run_detail = _Delegate("runs", RunRepository.get_run_detail)
    list_runs = _Delegate("runs", RunRepository.list_runs)
    run_metrics = _Delegate("runs", RunRepository.run_metrics)
    running_attempts = _Delegate("runs", RunRepository.running_attempts)
    open_runs = _Delegate("runs", RunRepository.open_runs)

    # -- fire records of time schedules -------------------------------------------------------
    claim_fire = _Delegate("fires", FireRepository.claim_fire)
    record_fires = _Delegate("fires", FireRepository.record_fires)
    update_fire = _Delegate("fires", FireRepository.update_fire)
    fires_with_outcome = _Delegate("fires", FireRepository.fires_with_outcome)
    list_fires = _Delegate("fires", FireRepository.list_fires)
    count_fires = _Delegate("fires", FireRepository.count_fires)

    # -- backfills of a schedule over a range ---------------------------------------------------
    create_backfill = _Delegate("backfills", BackfillRepository.create_backfill)
    resolve_backfill_id = _Delegate("backfills", BackfillRepository.resolve_backfill_id)
    get_backfill = _Delegate("backfills", BackfillRepository.get_backfill)
    list_backfills = _Delegate("backfills", BackfillRepository.list_backfills)
    backfill_times = _Delegate("backfills", BackfillRepository.backfill_times)
    set_backfill_time = _Delegate("backfills", BackfillRepository.set_backfill_time)
    finish_backfill = _Delegate("backfills", BackfillRepository.finish_backfill)
    take_backfill = _Delegate("backfills", BackfillRepository.take_backfill)
    fire_holders = _Delegate("backfills", BackfillRepository.fire_holders)
    recorded_run_status = _Delegate("backfills", BackfillRepository.recorded_run_status)
    claim_backfill_fire = _Delegate("backfills", BackfillRepository.claim_backfill_fire)
    settle_backfill_fire = _Delegate("backfills", BackfillRepository.settle_backfill_fire)

    # -- the file-drop ledger -----------------------------------------------------------------
    claim_files = _Delegate("ledger", LedgerRepository.claim_files)
    known_files = _Delegate("ledger", LedgerRepository.known_files)
    claimed_files = _Delegate("ledger", LedgerRepository.claimed_files)
    mark_files = _Delegate("ledger", LedgerRepository.mark_files)
    last_file = _Delegate("ledger", LedgerRepository.last_file)
    list_file_fires = _Delegate("ledger", LedgerRepository.list_file_fires)
    count_file_fires = _Delegate("ledger", LedgerRepository.count_file_fires)

    # -- schedules ----------------------------------------------------------------------------
    register_schedules = _Delegate("schedules", ScheduleRepository.register_schedules)
    schedule_states = _Delegate("schedules", ScheduleRepository.schedule_states)
    set_override = _Delegate("schedules", ScheduleRepository.set_override)
    add_api_schedule = _Delegate("schedules", ScheduleRepository.add_api_schedule)
    api_schedules = _Delegate("schedules", ScheduleRepository.api_schedules)
    get_api_schedule = _Delegate("schedules", ScheduleRepository.get_api_schedule)
    delete_api_schedule = _Delegate("schedules", ScheduleRepository.delete_api_schedule)
    update_api_schedule = _Delegate("schedules", ScheduleRepository.update_api_schedule)

    # -- leadership among standby daemons -------------------------------------------------------
    leadership = _Delegate("leaders", LeadershipRepository.leadership)
    take_leadership = _Delegate("leaders", LeadershipRepository.take_leadership)
    renew_lease = _Delegate("leaders", LeadershipRepository.renew_lease)
    beat = _Delegate("leaders", LeadershipRepository.beat)
    daemon_beats = _Delegate("leaders", LeadershipRepository.daemon_beats)
    forget_daemons = _Delegate("leaders", LeadershipRepository.forget_daemons)

    # -- published pipelines and versions -----------------------------------------------------
    ensure_pipeline_version = _Delegate("published", PublishedRepository.ensure_pipeline_version)
    add_published = _Delegate("published", PublishedRepository.add_published)
    pipeline_definition = _Delegate("published", PublishedRepository.pipeline_definition)
    get_published = _Delegate("published", PublishedRepository.get_published)
    list_published = _Delegate("published", PublishedRepository.list_published)
    get_default_version = _Delegate("published", PublishedRepository.get_default_version)
    set_default_version = _Delegate("published", PublishedRepository.set_default_version)
    endpoint_default = _Delegate("published", PublishedRepository.endpoint_default)
    add_endpoint_version = _Delegate("published", PublishedRepository.add_endpoint_version)
    set_endpoint_default = _Delegate("published", PublishedRepository.set_endpoint_default)
    rename_endpoint = _Delegate("published", PublishedRepository.rename_endpoint)
    get_endpoint = _Delegate("published", PublishedRepository.get_endpoint)
    list_endpoints = _Delegate("published", PublishedRepository.list_endpoints)

    # -- API tokens ---------------------------------------------------------------------------
    add_token = _Delegate("tokens", TokenRepository.add_token)
    list_token_records = _Delegate("tokens", TokenRepository.list_token_records)
    find_token = _Delegate("tokens", TokenRepository.find_token)
    revoke_token = _Delegate("tokens", TokenRepository.revoke_token)
    touch_token = _Delegate("tokens", TokenRepository.touch_token)

    # -- the model registry -------------------------------------------------------------------
    register_model = _Delegate("models", ModelRepository.register_model)
    add_model = _Delegate("models", ModelRepository.add_model)
    get_model = _Delegate("models", ModelRepository.get_model)
    list_models = _Delegate("models", ModelRepository.list_models)

    # -- upkeep: can the store be written, the WAL kept small (the daemon's timer) -------------
    probe_write = _Delegate("upkeep", _FencedUpkeep.probe_write)
    wal_bytes = _Delegate("upkeep", UpkeepRepository.wal_bytes)
    checkpoint = _Delegate("upkeep", UpkeepRepository.checkpoint)

    # -- the notify outbox: alert events waiting for their targets -----------------------------
    add_notification = _Delegate("outbox", OutboxRepository.add_notification)
    add_delivered = _Delegate("outbox", OutboxRepository.add_delivered)
    due_notifications = _Delegate("outbox", OutboxRepository.due_notifications)
    notification_sent = _Delegate("outbox", OutboxRepository.notification_sent)
    prune_notifications = _Delegate("outbox", OutboxRepository.prune_notifications)
    outbox_counts = _Delegate("outbox", OutboxRepository.outbox_counts)
    notifications = _Delegate("outbox", OutboxRepository.notifications)

    # -- figures for /metrics -----------------------------------------------------------------
    run_counts = _Delegate("figures", FiguresRepository.run_counts)
    fire_counts = _Delegate("figures", FiguresRepository.fire_counts)
    last_success_times = _Delegate("figures", FiguresRepository.last_success_times)
    step_attempts_after = _Delegate("figures", FiguresRepository.step_attempts_after)
    pruned_counts = _Delegate("figures", FiguresRepository.pruned_counts)

    # -- retention: what a prune deletes, a page per transaction ------------------------------
    protected_runs = _Delegate("retention", RetentionRepository.protected_runs)
    prunable_page = _Delegate("retention", RetentionRepository.prunable_page)
    ledger_rows = _Delegate("retention", RetentionRepository.ledger_rows)
    delete_runs = _Delegate("retention", RetentionRepository.delete_runs)
    delete_old_fires = _Delegate("retention", RetentionRepository.delete_old_fires)
    existing_runs = _Delegate("retention", RetentionRepository.existing_runs)
    run_count = _Delegate("retention", RetentionRepository.run_count)
    database_bytes = _Delegate("retention", RetentionRepository.database_bytes)


def _satisfies_every_protocol(
    store: Store,
) -> tuple[DispatchStore, ExecutorStore, FireStore, FileLedgerStore, RecoveryStore, ModelStore]:
    """Never called: the type checker proves here that the facade is each consumer's store."""
    return store, store, store, store, store, store
