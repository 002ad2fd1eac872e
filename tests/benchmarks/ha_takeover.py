"""Standby takeover on PostgreSQL: two real daemons (lease 3 s, heartbeat 0.5 s) share one
database while a 1 s interval schedule and file drops run. N times (50; ``--quick`` 5) the
leader is killed with ``kill -9``: the time from the kill to the new leader's ``ha_leader`` and
to the first fire record it writes (its ``created_at``; the next nominal time may be up to 1 s
away, so this includes that wait), then the killed one starts again as a standby. Then a few
network cuts (a proxy that blackholes the leader's connections): how long the cut-off leader
goes on writing fire records after the cut, which must stay below the lease. Afterwards the
store's invariants: nominal times run twice and lost, files handled twice and lost (all 0).

Needs ``PIPESCHED_TEST_DATABASE_URL`` (``.ci/run`` sets it): without it, no figures."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.benchmarks.figures import figure
from tests.conftest import POSTGRES_URL_ENV
from tests.ha_harness import TICK, FileDropper, HaCluster, now

LEASE = 3.0
HEARTBEAT = 0.5


def _kill_once(cluster: HaCluster) -> tuple[float, float]:
    """Kill the leader; (kill → new leader's ``ha_leader``, kill → its first fire record), in
    ms. The killed member starts again as a standby."""
    leader = cluster.leader()
    killed_at = now()
    leader.process.kill9()
    successor = cluster.wait_new_leader(leader)
    row = cluster.leadership()
    assert row is not None and row.pid == successor.pid, row
    cluster.wait_fires_of(row.epoch, after=killed_at, count=1)
    first = cluster.first_fire_after(killed_at, row.epoch)
    assert first is not None
    led = datetime.fromisoformat(successor.events("ha_leader")[-1]["timestamp"])
    cluster.start(leader)
    cluster.wait_role(leader, "standby")
    return (led - killed_at).total_seconds() * 1000, (first - killed_at).total_seconds() * 1000


def _cut_once(cluster: HaCluster) -> tuple[float, bool]:
    """Blackhole the leader's connections; ms from the cut to the last fire record of its
    epoch (0 when it wrote none after the cut), and whether a standby took over while the cut
    lasted (else only once it healed). The cut one comes back as a standby afterwards."""
    leader = cluster.leader()
    assert leader.proxy is not None
    row = cluster.leadership()
    assert row is not None
    cut_at = now()
    leader.proxy.cut("blackhole")
    try:
        cluster.wait_new_leader(leader, timeout=LEASE + 30)
        taken_over = True
    except AssertionError as exc:
        print(f"ha_takeover: no takeover during a cut:\n{str(exc)[:2000]}", file=sys.stderr)
        taken_over = False
        leader.proxy.restore()
        cluster.wait_new_leader(leader, timeout=LEASE + 30)
    cluster.wait(
        lambda: leader.role() in ("fenced", "lost", "exited", "standby"),
        f"the cut-off {leader.name} to fence itself",
        timeout=LEASE + 30,
    )
    last = max(f["created_at"] for f in cluster.fires(TICK) if f["epoch"] == row.epoch)
    leader.proxy.restore()
    cluster.wait(
        lambda: leader.role() in ("exited", "standby"),
        f"the reconnected {leader.name} to exit or stand by",
        timeout=90,  # its shutdown gives the store it can no longer write a grace of its own
    )
    if leader.role() == "exited":
        cluster.start(leader)
        cluster.wait_role(leader, "standby")
    return max(0.0, (last - cut_at).total_seconds() * 1000), taken_over


def _measure(root: Path, url: str, kills: int, cuts: int) -> list[dict]:
    with HaCluster(root, url, size=2, lease=LEASE, heartbeat=HEARTBEAT, proxied=True) as cluster:
        started = now()
        cluster.start_all()
        dropper = FileDropper(cluster.datastore).start()
        cluster.wait_fires_of(None, after=started, count=3)
        takeovers, first_fires, kept_firing, stuck = [], [], [], 0
        for _ in range(kills):
            led, fired = _kill_once(cluster)
            takeovers.append(led)
            first_fires.append(fired)
        for _ in range(cuts):
            kept, taken_over = _cut_once(cluster)
            kept_firing.append(kept)
            stuck += not taken_over
        cluster.quiesce(dropper, timeout=30, strict=False)
        checks = cluster.check(dropper.dropped)
        if checks.broken():
            print(f"ha_takeover: invariants broken: {checks.broken()}", file=sys.stderr)
            open_runs = [r for r in cluster.runs() if r["id"] in checks.open_runs]
            print(f"ha_takeover: open runs: {open_runs}", file=sys.stderr)
    lease_ms = LEASE * 1000
    return [
        figure("kill -9 -> new leader", takeovers, baseline=lease_ms, baseline_name="lease"),
        figure(
            "kill -9 -> new leader's first fire",
            first_fires,
            baseline=lease_ms,
            baseline_name="lease",
        ),
        figure(
            "cut -> cut-off leader's last fire (< lease)",
            kept_firing,
            baseline=lease_ms,
            baseline_name="lease",
        ),
        figure("cuts with no takeover until healed", [stuck], unit="count"),
        figure(
            "HA nominal times run twice",
            [len(checks.nominal_times_doubled) + len(checks.tick_runs_without_one_fire)],
            unit="count",
        ),
        figure("HA nominal times lost", [len(checks.nominal_times_lost)], unit="count"),
        figure(
            "HA files handled twice",
            [len(checks.files_doubled) + len(checks.files_executed_twice)],
            unit="count",
        ),
        figure("HA files lost", [len(checks.files_lost)], unit="count"),
        figure("HA runs left open", [len(checks.open_runs)], unit="count"),
    ]


def main(quick: bool = False) -> list[dict]:
    server = os.environ.get(POSTGRES_URL_ENV)
    if not server:
        print(f"ha_takeover: skipped, set {POSTGRES_URL_ENV} to a server URL", file=sys.stderr)
        return []
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"pipesched_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    began = time.perf_counter()
    try:
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory(prefix="bench-ha-") as tmp:
            figures = _measure(Path(tmp), url, kills=5 if quick else 50, cuts=2 if quick else 5)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(f"ha_takeover: {time.perf_counter() - began:.0f}s", file=sys.stderr)
    return figures
