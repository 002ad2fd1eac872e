"""Leadership among standby daemons, at the store: the epoch a takeover raises, the lease
counted on the database's clock, heartbeats, and the fence — a write made under an epoch that
is over is refused by the database, and every fire record carries its leader's epoch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from scheduler.store import Store
from scheduler.store.errors import StoreUnavailable
from scheduler.store.records import DaemonBeat, FileKey

NOMINAL = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("standby daemons share a PostgreSQL store")
    return database_url


@pytest.fixture
def two_daemons(postgres_url: str) -> Iterator[tuple[Store, Store]]:
    """Two daemons' stores on one database."""
    with Store.open(postgres_url) as first, Store.open(postgres_url) as second:
        yield first, second


def lead(store: Store, name: str, lease: float = 10.0) -> int:
    seen = store.leadership().epoch
    epoch = store.take_leadership(
        seen_epoch=seen, holder=name, host="h", pid=1, api_url=None, lease=lease
    )
    assert epoch is not None
    store.lead(epoch)
    return epoch


def test_each_takeover_raises_the_epoch_and_names_the_leader(two_daemons) -> None:
    first, second = two_daemons
    assert first.leadership().epoch == 0
    assert first.leadership().holder is None
    assert lead(first, "a") == 1
    assert lead(second, "b") == 2
    now = second.leadership()
    assert (now.epoch, now.holder) == (2, "b")
    assert not now.lease_lapsed


def test_a_takeover_from_a_stale_epoch_is_refused(two_daemons) -> None:
    first, second = two_daemons
    lead(first, "a")
    taken = second.take_leadership(
        seen_epoch=0, holder="b", host="h", pid=2, api_url=None, lease=10
    )
    assert taken is None
    assert second.leadership().holder == "a"


def test_the_old_leaders_writes_are_refused_by_the_database(two_daemons) -> None:
    first, second = two_daemons
    lead(first, "a")
    assert first.claim_fire("nightly", NOMINAL)
    lead(second, "b")
    with pytest.raises(StoreUnavailable, match="not the leader: epoch 1 is over"):
        first.claim_fire("nightly", NOMINAL + timedelta(days=1))
    with pytest.raises(StoreUnavailable):
        first.claim_files("drops", [FileKey("inbox/a.csv", 1, 1)])
    assert not first.renew_lease(1, 10)  # nor can it keep a lease it lost
    assert second.claim_fire("nightly", NOMINAL + timedelta(days=1))
    epochs = [(f.nominal_time, epoch_of(second, f.nominal_time)) for f in second.list_fires()]
    assert sorted(epochs) == [(NOMINAL, 1), (NOMINAL + timedelta(days=1), 2)]


def epoch_of(store: Store, nominal: datetime | None) -> int | None:
    with store.engine.connect() as conn:
        return conn.execute(
            text("SELECT epoch FROM fires WHERE nominal_time = :t"), {"t": nominal}
        ).scalar()


def test_a_lease_runs_on_the_databases_clock(two_daemons) -> None:
    first, _ = two_daemons
    epoch = lead(first, "a", lease=0.001)
    assert first.leadership().lease_lapsed  # a millisecond later, on the server's clock
    assert first.renew_lease(epoch, 30)
    renewed = first.leadership()
    assert not renewed.lease_lapsed
    assert renewed.lease_until is not None
    assert timedelta(seconds=29) < renewed.lease_until - renewed.server_now <= timedelta(seconds=30)


def test_heartbeats_are_listed_leader_first_and_forgotten(two_daemons) -> None:
    first, _ = two_daemons
    when = datetime(2026, 12, 6, tzinfo=UTC)

    def beat(name: str, role: str) -> DaemonBeat:
        return DaemonBeat(name, "h", 1, when, role, 1, when, 10.0, "0011", "0.1.0", None)

    first.beat(beat("z-standby", "standby"))
    first.beat(beat("leader", "leader"))
    first.beat(beat("z-standby", "standby"))  # once per daemon, updated in place
    beats = first.daemon_beats()
    assert [(b.name, b.role) for b in beats] == [("leader", "leader"), ("z-standby", "standby")]
    assert all(b.heartbeat_at > when for b in beats)  # the database's now, not the caller's
    assert first.forget_daemons(name="leader") == 1
    assert [b.name for b in first.daemon_beats()] == ["z-standby"]
