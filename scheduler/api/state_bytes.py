"""``pipesched_state_bytes{kind}`` for ``/metrics``: the space retention governs, by kind —
``runs`` (step logs and work folders under the state directory), ``outputs``, ``batches`` and
``work`` (each datastore's ``.pipesched/`` folders of runs) and ``database``.

Walking a year of run folders is too slow for every scrape: a scrape answers from the last
walk and, once that is older than ``WALK_INTERVAL`` seconds, starts a new one in a thread of
its own. Only the very first scrape waits for a walk.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scheduler.definitions.config import Config
from scheduler.services.retention import state_bytes
from scheduler.store import Store

WALK_INTERVAL = 300.0


class StateBytesCollector(Collector):
    def __init__(self, config: Config, store: Store) -> None:
        self.config, self.store = config, store
        self._lock = threading.Lock()
        self._figures: dict[str, int] | None = None
        self._walked_at = 0.0
        self._walking: threading.Thread | None = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            stale = time.monotonic() - self._walked_at >= WALK_INTERVAL
            if stale and (self._walking is None or not self._walking.is_alive()):
                self._walking = threading.Thread(
                    target=self._walk, name="pipesched-state-bytes", daemon=True
                )
                self._walking.start()
            walking, figures = self._walking, self._figures
        if figures is None and walking is not None:
            walking.join()
            figures = self._figures
        family = GaugeMetricFamily(
            "pipesched_state_bytes",
            "Space used by what retention deletes, and the database, by kind",
            labels=["kind"],
            unit="bytes",
        )
        for kind, size in (figures or {}).items():
            family.add_metric([kind], size)
        yield family

    def _walk(self) -> None:
        figures = dict(state_bytes(self.config))
        # The store may be down: the folders are still worth showing.
        with contextlib.suppress(Exception):
            figures["database"] = self.store.database_bytes()
        with self._lock:
            self._figures, self._walked_at = figures, time.monotonic()
