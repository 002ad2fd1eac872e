"""The notify outbox on ``/metrics``: ``pipesched_notify_pending`` (events not yet delivered to
a target, a gauge) and ``pipesched_notify_failed_total`` (events given up after their retries,
a counter read from the store, so it survives a restart; it drops only when the outbox's cap
deletes the oldest given-up rows)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from scheduler.store import Store


def notify_figures(store: Store) -> Iterator[Metric]:
    counts = store.outbox_counts()
    yield GaugeMetricFamily(
        "pipesched_notify_pending",
        "Alert events not yet delivered to a notify target",
        value=counts.pending,
    )
    yield CounterMetricFamily(
        "pipesched_notify_failed",
        "Alert events given up after the target's retries",
        value=counts.failed,
    )
