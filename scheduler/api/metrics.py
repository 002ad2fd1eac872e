"""``/metrics`` in Prometheus' text format (prometheus-client), read from the store at each
scrape. The store is the truth: a counter read from it survives a daemon restart and counts the
runs of a foreground ``pipesched run`` too, which counters kept in the daemon's memory would miss
(runs and fires a prune deletes are tallied in the store and added, so these counts only grow,
as a counter must). OpenMetrics is served to a scraper that asks for it (with ``# UNIT`` lines).

Figures:
- ``pipesched_runs_finished_total{pipeline,status}`` — runs that ended (completed, failed,
  canceled): a counter;
- ``pipesched_fires_total{schedule,outcome}`` — schedule fires by what became of them (started,
  queued, skipped, missed): a counter;
- ``pipesched_step_duration_seconds{pipeline}`` — a histogram of every step attempt that ran to
  an end (reused steps did not run), cumulative since the store began;
- ``pipesched_schedule_last_success_timestamp_seconds{schedule}`` — when the schedule's latest
  completed run finished (Unix time);
- ``pipesched_schedule_next_fire_timestamp_seconds{schedule}`` — its next fire time, for an
  enabled time schedule that will fire again;
- ``pipesched_build_info{version,python}`` — 1;
- ``pipesched_runs{pipeline,status}`` — runs recorded, by pipeline and status (a gauge: runs move
  between statuses);
- ``pipesched_queue_depth`` — runs ``queued``;
- ``pipesched_notify_pending`` / ``pipesched_notify_failed_total`` — alert events not yet
  delivered, and given up (``api/notify_metrics.py``);
- ``pipesched_schedule_delay_seconds{schedule}`` — from a schedule's last nominal fire time to
  its run being recorded;
- ``pipesched_file_drop_backlog{schedule}`` — files seen but not yet run, from ``backlog()``
  (0 until the file-drop trigger hands one in);
- ``pipesched_state_dir_bytes`` — disk space used under the state directory (blocks allocated,
  symlinks not followed; walked at most once per ``DISK_WALK_INTERVAL`` seconds);
- ``pipesched_zygote_up{target}``, ``pipesched_zygote_resident_bytes{target}`` and
  ``pipesched_warm_steps_total{target,how}`` — each warm compute target's zygote: ready or not,
  its resident memory, and the steps forked from it or spawned instead;
- ``pipesched_state_dir_free_bytes`` / ``pipesched_state_dir_filesystem_bytes`` — space free to
  the daemon's user on the state directory's filesystem, and its size (at every scrape);
- on a PostgreSQL store only, where standby daemons may share it: ``pipesched_ha_epoch`` (the
  epoch of the current leadership, 0 before any), ``pipesched_ha_is_leader`` (1 on the daemon
  that leads or runs alone, 0 on a standby), ``pipesched_ha_standbys`` (standbys whose heartbeat
  is younger than their lease) and ``pipesched_ha_heartbeat_age_seconds{daemon}`` (each daemon's
  last heartbeat, on the database's clock).
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from scheduler import __version__
from scheduler.api.notify_metrics import notify_figures
from scheduler.compute.warm import active_pool
from scheduler.core.clock import SYSTEM_CLOCK, Clock
from scheduler.core.errors import NotFound, PipeschedError
from scheduler.services.schedules import list_schedules
from scheduler.store.records import FINISHED_RUN_STATUSES

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store
    from scheduler.store.figures import StepAttemptTimes

DISK_WALK_INTERVAL = 30.0
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, float("inf"))
# A step attempt row is read again at each scrape until it has been settled this long: rows
# committed out of id order (concurrent writers on PostgreSQL) are still counted.
SETTLE_MARGIN = timedelta(minutes=5)

NextFires = Callable[[], Mapping[str, datetime]]
Health = Callable[[], Mapping[str, Any]]


class StoreCollector(Collector):
    """Reads the figures from the store when Prometheus scrapes."""

    def __init__(
        self,
        store: Store,
        backlog: Callable[[], Mapping[str, int]] | None = None,
        next_fires: NextFires | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.backlog = backlog or (lambda: {})
        self.next_fires = next_fires or (lambda: {})
        self.durations = StepDurations(clock)

    def collect(self) -> Iterator[Metric]:
        yield _build_info()
        counts = self.store.run_counts()
        finished = CounterMetricFamily(
            "pipesched_runs_finished",
            "Runs that ended, by pipeline and final status",
            labels=["pipeline", "status"],
        )
        runs = GaugeMetricFamily(
            "pipesched_runs", "Runs recorded, by pipeline and status", labels=["pipeline", "status"]
        )
        pruned = self.store.pruned_counts()  # rows prunes deleted: counters never go down
        ended = {key: count for key, count in counts.items() if key[1] in FINISHED_RUN_STATUSES}
        queued = 0
        for (pipeline, status), count in sorted(counts.items()):
            runs.add_metric([pipeline, status], count)
            queued += count if status == "queued" else 0
        for key, count in sorted(_plus(ended, pruned, "runs").items()):
            finished.add_metric(list(key), count)
        yield finished
        yield runs
        yield GaugeMetricFamily("pipesched_queue_depth", "Runs waiting to start", value=queued)
        yield from notify_figures(self.store)
        fires = CounterMetricFamily(
            "pipesched_fires",
            "Schedule fires, by what became of them",
            labels=["schedule", "outcome"],
        )
        for key, count in sorted(_plus(self.store.fire_counts(), pruned, "fires").items()):
            fires.add_metric(list(key), count)
        yield fires
        yield self.durations.collect(self.store)
        yield _timestamps(
            "pipesched_schedule_last_success_timestamp",
            "When the schedule's latest completed run finished",
            self.store.last_success_times(),
        )
        yield _timestamps(
            "pipesched_schedule_next_fire_timestamp",
            "The schedule's next fire time",
            self.next_fires(),
        )
        delay = GaugeMetricFamily(
            "pipesched_schedule_delay_seconds",
            "From a schedule's last nominal fire time to its run being recorded",
            labels=["schedule"],
            unit="seconds",
        )
        for name, seconds in sorted(schedule_delays(self.store).items()):
            delay.add_metric([name], seconds)
        yield delay
        backlog = GaugeMetricFamily(
            "pipesched_file_drop_backlog",
            "Dropped files seen but not yet run, by schedule",
            labels=["schedule"],
        )
        for name, count in sorted(self.backlog().items()):
            backlog.add_metric([name], count)
        yield backlog


class StepDurations:
    """The cumulative step duration histogram, brought up to date at each scrape by reading only
    the step attempts it has not settled yet: the first scrape reads them all, later ones the
    few since (rows below ``_through`` are counted and never change)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._through = 0  # every row up to this id is counted (or not countable) for good
        self._counted: set[int] = set()  # rows above _through already counted
        self._buckets: dict[str, list[int]] = {}  # per pipeline, per bucket (not cumulative)
        self._sums: dict[str, float] = {}
        self._lock = threading.Lock()

    def collect(self, store: Store) -> Metric:
        with self._lock:
            self._catch_up(store)
            family = HistogramMetricFamily(
                "pipesched_step_duration_seconds",
                "Durations of the step attempts that ran, by pipeline",
                labels=["pipeline"],
                unit="seconds",
            )
            for pipeline, counts in sorted(self._buckets.items()):
                cumulative, buckets = 0, []
                for bound, count in zip(DURATION_BUCKETS, counts, strict=True):
                    cumulative += count
                    buckets.append((_le(bound), float(cumulative)))
                family.add_metric([pipeline], buckets, sum_value=self._sums[pipeline])
            return family

    def _catch_up(self, store: Store) -> None:
        settled_before = self.clock.now() - SETTLE_MARGIN
        advancing = True
        for row in store.step_attempts_after(self._through):
            if row.settled and row.id not in self._counted:
                self._count(row)
                self._counted.add(row.id)
            old = row.finished_at is None or row.finished_at <= settled_before
            if advancing and row.settled and old:
                self._through = row.id
                self._counted.discard(row.id)
            else:
                advancing = False

    def _count(self, row: StepAttemptTimes) -> None:
        if row.started_at is None or row.finished_at is None or row.status == "reused":
            return
        seconds = max(0.0, (row.finished_at - row.started_at).total_seconds())
        counts = self._buckets.setdefault(row.pipeline, [0] * len(DURATION_BUCKETS))
        index = next(i for i, bound in enumerate(DURATION_BUCKETS) if seconds <= bound)
        counts[index] += 1
        self._sums[row.pipeline] = self._sums.get(row.pipeline, 0.0) + seconds


def _plus(
    counts: Mapping[tuple[str, str], int], pruned: Mapping[tuple[str, str, str], int], kind: str
) -> dict[tuple[str, str], int]:
    """``counts`` of the rows plus those of ``kind`` that prunes deleted (settled ones only)."""
    total = dict(counts)
    for (of, name, outcome), count in pruned.items():
        if of == kind and outcome not in ("queued", "running", "claimed"):
            total[(name, outcome)] = total.get((name, outcome), 0) + count
    return total


def _build_info() -> Metric:
    info = GaugeMetricFamily(
        "pipesched_build_info",
        "pipesched's version and the Python it runs on (always 1)",
        labels=["version", "python"],
    )
    info.add_metric([__version__, platform.python_version()], 1)
    return info


def _timestamps(name: str, documentation: str, times: Mapping[str, datetime]) -> Metric:
    family = GaugeMetricFamily(
        f"{name}_seconds", documentation, labels=["schedule"], unit="seconds"
    )
    for schedule, moment in sorted(times.items()):
        family.add_metric([schedule], moment.timestamp())
    return family


class WarmCollector(Collector):
    """The zygotes of warm compute targets (``compute/warm.py``), when the daemon has any."""

    def collect(self) -> Iterator[Metric]:
        pool = active_pool()
        rows = pool.describe() if pool is not None else []
        up = GaugeMetricFamily(
            "pipesched_zygote_up",
            "1 when the target's zygote is ready to fork steps",
            labels=["target"],
        )
        memory = GaugeMetricFamily(
            "pipesched_zygote_resident_bytes",
            "Resident memory of the target's zygote",
            labels=["target"],
            unit="bytes",
        )
        started = CounterMetricFamily(
            "pipesched_warm_steps",
            "Steps started on a warm target since the daemon started, by how: forked or spawned",
            labels=["target", "how"],
        )
        for row in rows:
            up.add_metric([row["target"]], 1 if row["state"] == "ready" else 0)
            if row["resident_bytes"] is not None:
                memory.add_metric([row["target"]], row["resident_bytes"])
            started.add_metric([row["target"], "forked"], row["forked"])
            started.add_metric([row["target"], "spawned"], row["spawned"])
        yield from (up, memory, started)


class HaCollector(Collector):
    """Leadership among the daemons sharing a PostgreSQL store: the epoch, whether this daemon
    leads (its ``health()`` role), and every daemon's heartbeat, read from the store."""

    def __init__(self, store: Store, health: Health | None) -> None:
        self.store = store
        self.health = health

    def collect(self) -> Iterator[Metric]:
        leadership = self.store.leadership()
        beats = self.store.daemon_beats()
        now = leadership.server_now
        yield GaugeMetricFamily(
            "pipesched_ha_epoch",
            "The epoch of the current leadership among the daemons (0 before any)",
            value=leadership.epoch,
        )
        role = self.health().get("role") if self.health is not None else None
        if role is not None:
            yield GaugeMetricFamily(
                "pipesched_ha_is_leader",
                "1 when this daemon leads (or runs alone), 0 on a standby",
                value=0 if role == "standby" else 1,
            )
        ages = {beat.name: max(0.0, (now - beat.heartbeat_at).total_seconds()) for beat in beats}
        live = [b for b in beats if b.role == "standby" and ages[b.name] < b.lease_seconds]
        yield GaugeMetricFamily(
            "pipesched_ha_standbys",
            "Standby daemons whose last heartbeat is younger than their lease",
            value=len(live),
        )
        age = GaugeMetricFamily(
            "pipesched_ha_heartbeat_age_seconds",
            "Seconds since each daemon's last heartbeat, on the database's clock",
            labels=["daemon"],
            unit="seconds",
        )
        for name, seconds in sorted(ages.items()):
            age.add_metric([name], seconds)
        yield age


class StateDirCollector(Collector):
    """The state directory's disk use and its filesystem's free space."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._used: tuple[float, int] | None = None  # (monotonic time, bytes)
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "pipesched_state_dir_bytes",
            "Disk space used under the state directory",
            unit="bytes",
            value=self._used_bytes(),
        )
        try:
            fs = os.statvfs(self.state_dir)
        except OSError:  # not created yet
            return
        yield GaugeMetricFamily(
            "pipesched_state_dir_free_bytes",
            "Space free to the daemon on the state directory's filesystem",
            unit="bytes",
            value=fs.f_bavail * fs.f_frsize,
        )
        yield GaugeMetricFamily(
            "pipesched_state_dir_filesystem_bytes",
            "Size of the state directory's filesystem",
            unit="bytes",
            value=fs.f_blocks * fs.f_frsize,
        )

    def _used_bytes(self) -> int:
        with self._lock:
            now = time.monotonic()
            if self._used is None or now - self._used[0] >= DISK_WALK_INTERVAL:
                self._used = (now, disk_usage(self.state_dir))
            return self._used[1]


def disk_usage(folder: Path) -> int:
    """Bytes allocated to the files and folders under ``folder`` (symlinks not followed; what
    vanishes during the walk is skipped)."""
    total = 0
    pending = [str(folder)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
    return total


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def metrics_response(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The exposition and its content type: OpenMetrics when the scraper asks for it."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def make_registry(
    store: Store,
    backlog: Callable[[], Mapping[str, int]] | None = None,
    state_dir: Path | None = None,
    *,
    next_fires: NextFires | None = None,
    clock: Clock = SYSTEM_CLOCK,
    health: Health | None = None,
) -> CollectorRegistry:
    """A registry of our own (not the process-wide default) per app: tests build many apps.
    ``health`` is the daemon's own (its ``role`` says whether it leads)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, backlog, next_fires, clock))
    if state_dir is not None:
        registry.register(StateDirCollector(state_dir))
    registry.register(WarmCollector())
    if store.engine.dialect.name == "postgresql":  # only there can daemons share a store
        registry.register(HaCollector(store, health))
    return registry


def schedule_next_fires(config: Config, store: Store, clock: Clock) -> NextFires:
    """The next fire time of each schedule, as ``pipesched schedules`` computes it (read at
    each scrape, so a reload or an enable shows at once); nothing while the schedules file
    cannot be read."""

    def next_fires() -> dict[str, datetime]:
        try:
            summaries = list_schedules(config, store, clock.now())
        except PipeschedError:
            return {}
        return {s.name: s.next_fire_time for s in summaries if s.next_fire_time is not None}

    return next_fires


# -- store figures -------------------------------------------------------------------------


def schedule_delays(store: Store) -> dict[str, float]:
    """Seconds from each schedule's last nominal fire time to its run's creation."""
    delays = {}
    for name, state in store.schedule_states().items():
        if state.last_fire_time is None or not state.last_run_id:
            continue
        try:
            run = store.get_run(state.last_run_id)
        except NotFound:
            continue
        delays[name] = max(0.0, (run.created_at - state.last_fire_time).total_seconds())
    return delays
