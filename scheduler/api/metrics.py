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
  (0 until the file-drop trigger hands one in).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scheduler.core.errors import NotFound

if TYPE_CHECKING:
    from scheduler.store import Store

DURATION_WINDOW = 1000
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


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


def metrics_text(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def make_registry(
    store: Store, backlog: Callable[[], Mapping[str, int]] | None = None
) -> CollectorRegistry:
    """A registry of our own (not the process-wide default) per app: tests build many apps."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, backlog))
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
