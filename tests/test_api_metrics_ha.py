"""The leadership gauges of ``/metrics``, scraped from real daemons: absent on SQLite (no
daemon can share that store); on PostgreSQL the epoch, whether the scraped daemon leads, the
standbys still beating and each daemon's heartbeat age — on the leader and on a standby."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.ha_daemons import scrape, start_pair
from tests.projects import make_project

ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
HA_GAUGES = (
    "pipesched_ha_epoch",
    "pipesched_ha_is_leader",
    "pipesched_ha_standbys",
    "pipesched_ha_heartbeat_age_seconds",
)


def value(metrics: dict, name: str) -> float:
    ((_, found),) = metrics[name]
    return found


def ages(metrics: dict) -> dict[str, float]:
    return {labels["daemon"]: age for labels, age in metrics["pipesched_ha_heartbeat_age_seconds"]}


def test_no_leadership_gauges_on_sqlite(tmp_path: Path, daemons) -> None:
    project = make_project(tmp_path, shutdown_grace="1s")
    daemons(project).start()
    metrics = scrape(project)
    assert "pipesched_queue_depth" in metrics  # the scrape itself worked
    assert not [name for name in metrics if name.startswith("pipesched_ha_")]


@ON_POSTGRESQL
def test_a_daemon_alone_on_postgresql_leads_at_epoch_0(
    tmp_path: Path, database_url: str, daemons
) -> None:
    project = make_project(tmp_path, database_url=database_url, shutdown_grace="1s")
    daemons(project).start()
    metrics = scrape(project)
    assert set(HA_GAUGES) <= set(metrics)
    assert value(metrics, "pipesched_ha_epoch") == 0
    assert value(metrics, "pipesched_ha_is_leader") == 1
    assert value(metrics, "pipesched_ha_standbys") == 0
    assert ages(metrics) == {}


@pytest.mark.slow
@ON_POSTGRESQL
def test_the_leader_and_the_standby_each_say_which_they_are(
    tmp_path: Path, database_url: str, daemons
) -> None:
    pair = start_pair(tmp_path, database_url, daemons)
    with pair.leader_project.store() as store:
        epoch = store.leadership().epoch
        wait_until(lambda: len(store.daemon_beats()) == 2, timeout=20, message="two heartbeats")
        names = {beat.role: beat.name for beat in store.daemon_beats()}
    assert epoch >= 1

    leader = scrape(pair.leader_project)
    standby = scrape(pair.standby_project)
    assert value(leader, "pipesched_ha_is_leader") == 1
    assert value(standby, "pipesched_ha_is_leader") == 0
    for metrics in (leader, standby):
        assert value(metrics, "pipesched_ha_epoch") == epoch
        assert value(metrics, "pipesched_ha_standbys") == 1
        seen = ages(metrics)
        assert set(seen) == {names["leader"], names["standby"]}
        assert all(0 <= age < 3 for age in seen.values())  # younger than the 3 s lease

    # A standby that stops beating no longer counts once its heartbeat is older than its lease.
    pair.standby.kill9()
    wait_until(
        lambda: value(scrape(pair.leader_project), "pipesched_ha_standbys") == 0,
        timeout=20,
        message="the dead standby's heartbeat to lapse",
    )
    assert ages(scrape(pair.leader_project))[names["standby"]] >= 3
