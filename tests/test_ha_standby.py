"""Several real daemons sharing one PostgreSQL database and one datastore: one leads, the others
stand by and take over when it dies, stops, or is cut off from the database; a rolling restart
of them all never pauses the schedules for long. A 1 s interval schedule and files dropped into
a shared inbox run throughout, and after each fault the store shows no nominal time run twice
or lost, no file handled twice, no run left open, and leader epochs that never go back."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import wait_until
from tests.ha_harness import TICK, FileDropper, HaCluster, Member, now

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

LEASE = 3.0
HEARTBEAT = 0.5
# A takeover's share of a pause beyond the lease itself: the old leader's shutdown grace, the
# new leader's recovery and catch-up, on a machine whose two cores other tests share.
SLACK = 5.0
# A replaced leader's stop: its shutdown grace, its steps' kill grace, and the time it gives an
# unwritable store to take the outcomes it holds.
EXIT_WAIT = 90.0

MakeCluster = Callable[..., HaCluster]


@pytest.fixture
def make_cluster(tmp_path: Path, database_url: str, daemons) -> Iterator[MakeCluster]:
    made: list[HaCluster] = []

    def make(**settings) -> HaCluster:
        settings = {"lease": LEASE, "heartbeat": HEARTBEAT, **settings}
        cluster = HaCluster(tmp_path / f"c{len(made)}", database_url, daemons, **settings)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.close()


def running(cluster: HaCluster, *, fires: int = 3) -> tuple[Member, int, FileDropper]:
    """Start every member and the dropper; once the leader has fired ``fires`` times, return
    the leader, its epoch and the dropper."""
    started = now()
    leader = cluster.start_all()
    row = cluster.leadership()
    assert row is not None and row.pid == leader.pid, row
    dropper = FileDropper(cluster.datastore).start()
    cluster.wait_fires_of(row.epoch, after=started, count=fires)
    return leader, row.epoch, dropper


def _at(event: dict) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def gone_or_standing_by(member: Member) -> str | None:
    """The member's state once it no longer leads: ``exited`` or ``standby``."""
    role = member.role()
    return role if role in ("exited", "standby") else None


# -- without standby mode -------------------------------------------------------------------


def test_without_standby_mode_a_second_daemon_exits_1_naming_the_holder(make_cluster):
    cluster = make_cluster(size=2, standby=False)
    first, second = cluster.members
    cluster.start(first)
    cluster.wait_role(first, "leader")
    cluster.start(second, wait=False)
    assert second.process.wait_exit(timeout=60) == 1
    log = second.process.log()
    assert "another pipesched daemon holds this PostgreSQL database" in log
    assert f"pid {first.pid}" in log
    assert first.alive() and first.role() == "leader"
    assert first.process.stop() == 0


# -- standing by ----------------------------------------------------------------------------


def test_a_standby_is_ready_and_says_which_daemon_leads(make_cluster):
    cluster = make_cluster(size=2)
    leader, epoch, dropper = running(cluster)
    standby = cluster.members[1]
    ready = standby.process.wait_message("READY=1", timeout=10)
    (status,) = [line for line in ready.splitlines() if line.startswith("STATUS=")] or [ready]
    assert status.startswith("STATUS=standby; leader "), ready
    assert f":{leader.pid} since " in status, status
    (event,) = standby.events("ha_standby")
    assert f":{leader.pid} since " in event["leader"] and event["epoch"] == epoch, event
    # Both write their heartbeat, each with its role.
    with cluster.engine.connect() as conn:
        rows = conn.execute(text("SELECT pid, role, epoch FROM daemon_heartbeats")).all()
    roles = {row[0]: (row[1], row[2]) for row in rows}
    assert roles.get(leader.pid) == ("leader", epoch), roles
    assert roles.get(standby.pid, ("?",))[0] == "standby", roles
    assert not standby.events("schedule_fired")
    stopped = cluster.quiesce(dropper)
    cluster.check(dropper.dropped).assert_hold()
    assert set(stopped.values()) == {0}, (stopped, cluster.logs())


def test_a_standby_answers_reads_and_does_not_take_writes_itself(make_cluster):
    cluster = make_cluster(size=2)
    leader, _, dropper = running(cluster)
    standby = cluster.members[1]

    status, runs = standby.request("GET", "/api/v1/runs?limit=5")
    assert status == 200, runs
    assert runs, "the standby reads the runs the leader made"
    assert {r["id"] for r in runs} <= {r["id"] for r in cluster.runs()}

    status, body = standby.request("POST", "/api/v1/pipelines/tick/runs", {})
    if status == 503:  # refused: the answer names the leader
        assert f"{leader.pid}" in str(body), body
    else:  # forwarded: the leader made the run
        assert status == 202, body
        run = next(r for r in cluster.runs() if r["id"] == body["Id"])
        assert run["owner_pid"] == leader.pid, run
    assert not standby.events("api_run_submitted")

    status, body = standby.request("POST", f"/api/v1/schedules/{TICK}/disable")
    if status == 503:
        assert f"{leader.pid}" in str(body), body
    else:  # forwarded: the leader disabled it; enabled again so that the interval goes on
        assert status == 200, body
        assert leader.request("POST", f"/api/v1/schedules/{TICK}/enable")[0] == 200
    stopped = cluster.quiesce(dropper)
    cluster.check(dropper.dropped).assert_hold()
    assert set(stopped.values()) == {0}, (stopped, cluster.logs())


# -- faults ---------------------------------------------------------------------------------


def test_a_standby_takes_over_from_a_leader_killed_with_sigkill(make_cluster):
    cluster = make_cluster()
    leader, epoch, dropper = running(cluster)

    killed_at = now()
    leader.process.kill9()
    successor = cluster.wait_new_leader(leader)
    row = cluster.leadership()
    assert row is not None and row.epoch > epoch and row.pid == successor.pid, row
    cluster.wait_fires_of(row.epoch, after=killed_at, count=3)
    first = cluster.first_fire_after(killed_at, row.epoch)
    assert first is not None
    (led,) = successor.events("ha_leader")
    assert led["epoch"] == row.epoch and f":{leader.pid} since " in led["previous"], led
    print(f"\nkill -9 to the new leader's first fire: {(first - killed_at).total_seconds():.2f} s")

    cluster.start(leader)  # back, as a standby
    cluster.wait_role(leader, "standby")
    stopped = cluster.quiesce(dropper)
    cluster.check(dropper.dropped).assert_hold()
    assert set(stopped.values()) == {0}, (stopped, cluster.logs())


def test_a_leader_stopped_longer_than_its_lease_never_writes_after_the_takeover(make_cluster):
    cluster = make_cluster()
    leader, epoch, dropper = running(cluster)

    stopped_at = now()
    leader.process.signal(signal.SIGSTOP)
    try:
        cluster.wait_new_leader(leader, timeout=LEASE + 30)
    finally:
        leader.process.signal(signal.SIGCONT)
    row = cluster.leadership()
    assert row is not None and row.epoch > epoch, row
    # The stopped leader's session still held the lock: a standby ended it (others may have
    # ended it at the same moment too).
    ended = [
        e
        for m in cluster.members
        for e in m.events("ha_takeover")
        if e["ended"] and f"pid {leader.pid} " in e["terminated_session"]
    ]
    assert ended, [m.events("ha_takeover") for m in cluster.members]
    waited = (cluster.first_fire_after(stopped_at, row.epoch) or now()) - stopped_at
    print(f"\nSIGSTOP to the new leader's first fire: {waited.total_seconds():.2f} s")

    outcome = cluster.wait(
        lambda: gone_or_standing_by(leader), "the resumed leader to exit or stand by", EXIT_WAIT
    )
    if outcome == "exited":
        assert leader.process.wait_exit() == 1, leader.logs()
    current = cluster.leadership()
    assert current is not None
    cluster.wait_fires_of(current.epoch, after=now(), count=2)
    # Only the stopped leader's session was ended: never that of the daemon taking over.
    wrongly_ended = [
        (m.name, e)
        for m in cluster.members
        for e in m.events("ha_takeover")
        if e["ended"] and f"pid {leader.pid} " not in e["terminated_session"]
    ]
    assert not wrongly_ended, wrongly_ended
    assert cluster.leader().pid == current.pid
    new_era = min(f["created_at"] for f in cluster.fires(TICK) if (f["epoch"] or 0) > epoch)
    late = [f for f in cluster.fires(TICK) if f["epoch"] == epoch and f["created_at"] >= new_era]
    assert not late, late
    stopped = cluster.quiesce(dropper)
    cluster.check(dropper.dropped).assert_hold()
    assert set(stopped.values()) == {0}, (stopped, cluster.logs())


@pytest.mark.parametrize("mode", ["blackhole", "blackhole-in-transaction", "reset"])
def test_a_leader_cut_off_from_the_database_stops_firing_within_its_lease(make_cluster, mode):
    """``blackhole``: the server keeps the cut leader's session (and lock) until a standby ends
    it; ``blackhole-in-transaction``: cut while one of the leader's sessions is inside a write
    transaction, which the server keeps open, locks and all; ``reset``: the server sees the
    session end at once."""
    cluster = make_cluster(proxied=True)
    leader, epoch, dropper = running(cluster)
    assert leader.proxy is not None

    if mode == "blackhole-in-transaction":
        # A write transaction: it holds a share lock on the leadership row when cut.
        leader.proxy.cut_in_transaction("blackhole", statement=b"FOR SHARE")
        cut_at = leader.proxy.wait_cut(timeout=30)
    else:
        cut_at = now()
        leader.proxy.cut("reset" if mode == "reset" else "blackhole")
    successor = cluster.wait_new_leader(leader, timeout=LEASE + 30)
    row = cluster.leadership()
    assert row is not None and row.epoch > epoch and row.pid == successor.pid, row
    cluster.wait_fires_of(row.epoch, after=cut_at, count=3)
    wait_until(
        lambda: leader.role() in ("fenced", "lost", "exited"),
        timeout=LEASE + 30,
        message=f"the cut-off leader to fence itself:\n{leader.logs()}",
    )
    old_fires = [f for f in cluster.fires(TICK) if f["epoch"] == epoch]
    last_old = max(f["created_at"] for f in old_fires)
    print(f"\ncut to the old leader's last fire: {(last_old - cut_at).total_seconds():.2f} s")
    assert last_old <= cut_at + timedelta(seconds=LEASE), (cut_at, last_old)
    fired_late = [
        e
        for e in leader.process.events("schedule_fired")
        if e["timestamp"] > (cut_at + timedelta(seconds=LEASE)).isoformat()
    ]
    assert not fired_late, fired_late
    if mode != "reset":  # the server kept its session: it must have fenced itself first
        (fenced,) = leader.process.events("ha_fenced")
        (led,) = successor.events("ha_leader")
        assert fenced["timestamp"] < led["timestamp"], (fenced, led)
        print(f"cut to fenced: {(_at(fenced) - cut_at).total_seconds():.2f} s")

    leader.proxy.restore()
    outcome = cluster.wait(
        lambda: gone_or_standing_by(leader), "the reconnected leader to exit or stand by", EXIT_WAIT
    )
    if outcome == "exited":
        assert leader.process.wait_exit() == 1, leader.logs()
    stopped = cluster.quiesce(dropper)
    cluster.check(dropper.dropped).assert_hold()
    assert set(stopped.values()) == {0}, (stopped, cluster.logs())


def test_a_rolling_restart_never_pauses_the_schedules_longer_than_a_lease(make_cluster):
    cluster = make_cluster()
    _, epoch, dropper = running(cluster)

    began = now()
    restarted: dict[str, int] = {}
    for member in cluster.members:
        was_leader = member.role() == "leader"
        restarted[member.name] = member.process.stop()
        if was_leader:
            cluster.wait_new_leader(member)
        cluster.start(member)
        cluster.wait_role(member, "standby")
    ended = now()
    row = cluster.leadership()
    assert row is not None and row.epoch > epoch, row
    cluster.wait_fires_of(row.epoch, after=ended, count=2)

    during = [
        f
        for f in cluster.fires(TICK)
        if f["nominal_time"] is not None and began <= f["nominal_time"] <= ended
    ]
    lateness = max((f["created_at"] - f["nominal_time"]).total_seconds() for f in during)
    print(f"\nrolling restart: {len(during)} fire times, the latest {lateness:.2f} s late")
    assert lateness <= LEASE + SLACK, lateness
    stopped = cluster.quiesce(dropper)
    cluster.check(dropper.dropped).assert_hold()
    assert set(restarted.values()) == {0}, (restarted, cluster.logs())
    assert set(stopped.values()) == {0}, (stopped, cluster.logs())
