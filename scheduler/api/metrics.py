"""``/metrics`` in Prometheus' text format (prometheus-client), computed from the store at each
scrape: the store is the truth, and a custom collector keeps no counters that a restart would
reset or that a second process (a foreground ``pipesched run``) would never see.

Figures:
- ``pipesched_runs{pipeline,status}`` — runs recorded, by pipeline and status (a gauge: runs move
  between statuses);
- ``pipesched_queue_depth`` — runs ``queued``;
- ``pipesched_step_duration_seconds{pipeline}`` — a gauge histogram of the durations of the last
  ``DURATION_WINDOW`` finished step attempts (a window, not a counter since start);
- ``pipesched_schedule_delay_seconds{schedule}`` — from a schedule's last nominal fire time to
  its run being recorded;
- ``pipesched_file_drop_backlog{schedule}`` — files seen but not yet run, from ``backlog()``
  (0 until the file-drop trigger hands one in);
- ``pipesched_state_dir_bytes`` — disk space used under the state directory (blocks allocated,
  symlinks not followed; walked at most once per ``DISK_WALK_INTERVAL`` seconds);
- ``pipesched_state_dir_free_bytes`` / ``pipesched_state_dir_filesystem_bytes`` — space free to
  the daemon's user on the state directory's filesystem, and its size (at every scrape).
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scheduler.core.errors import NotFound

if TYPE_CHECKING:
    from scheduler.store import Store

DURATION_WINDOW = 1000
DISK_WALK_INTERVAL = 30.0
DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, float("inf"))


class StoreCollector(Collector):
    """Reads the figures from the store when Prometheus scrapes."""

    def __init__(
        self, store: Store, backlog: Callable[[], Mapping[str, int]] | None = None
    ) -> None:
        self.store = store
        self.backlog = backlog or (lambda: {})

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "pipesched_runs", "Runs recorded, by pipeline and status", labels=["pipeline", "status"]
        )
        queued = 0
        for (pipeline, status), count in sorted(self.store.run_counts().items()):
            runs.add_metric([pipeline, status], count)
            queued += count if status == "queued" else 0
        yield runs
        yield GaugeMetricFamily("pipesched_queue_depth", "Runs waiting to start", value=queued)
        yield self._durations()
        delay = GaugeMetricFamily(
            "pipesched_schedule_delay_seconds",
            "From a schedule's last nominal fire time to its run being recorded",
            labels=["schedule"],
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

    def _durations(self) -> Metric:
        family = GaugeHistogramMetricFamily(
            "pipesched_step_duration_seconds",
            f"Durations of the last {DURATION_WINDOW} finished step attempts, by pipeline",
            labels=["pipeline"],
        )
        by_pipeline: dict[str, list[float]] = defaultdict(list)
        for pipeline, seconds in self.store.recent_step_durations(DURATION_WINDOW):
            by_pipeline[pipeline].append(seconds)
        for pipeline, values in sorted(by_pipeline.items()):
            buckets = [
                (_le(bound), sum(1 for v in values if v <= bound)) for bound in DURATION_BUCKETS
            ]
            family.add_metric([pipeline], buckets, gsum_value=sum(values))
        return family


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
            value=self._used_bytes(),
        )
        try:
            fs = os.statvfs(self.state_dir)
        except OSError:  # not created yet
            return
        yield GaugeMetricFamily(
            "pipesched_state_dir_free_bytes",
            "Space free to the daemon on the state directory's filesystem",
            value=fs.f_bavail * fs.f_frsize,
        )
        yield GaugeMetricFamily(
            "pipesched_state_dir_filesystem_bytes",
            "Size of the state directory's filesystem",
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


def metrics_text(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def make_registry(
    store: Store,
    backlog: Callable[[], Mapping[str, int]] | None = None,
    state_dir: Path | None = None,
) -> CollectorRegistry:
    """A registry of our own (not the process-wide default) per app: tests build many apps."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, backlog))
    if state_dir is not None:
        registry.register(StateDirCollector(state_dir))
    return registry


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
