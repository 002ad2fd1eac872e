"""Two real daemons sharing one PostgreSQL database as leader and standby, each with its own
project folder (config, state directory, socket) and an API on a port of its own, and the
``/metrics`` of a daemon read over its socket the way Prometheus reads it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from scheduler.services.daemon_http import socket_path
from tests.daemon_harness import DaemonProcess, UnixHTTPConnection
from tests.projects import Project, make_project

# Short, so a test sees a lapsed heartbeat within seconds.
HA = {"mode": "standby", "lease": "3s", "heartbeat": "0.5s"}


@dataclass
class Pair:
    leader: DaemonProcess
    standby: DaemonProcess

    @property
    def leader_project(self) -> Project:
        return self.leader.project

    @property
    def standby_project(self) -> Project:
        return self.standby.project


def start_pair(root: Path, database_url: str, daemons: Callable[..., DaemonProcess]) -> Pair:
    """The first daemon leads (READY=1 once it serves); the second says READY=1 as a standby."""
    projects = [
        make_project(root / name, database_url=database_url, shutdown_grace="1s", ha=HA)
        for name in ("leader", "standby")
    ]
    leader = daemons(projects[0]).start()
    standby = daemons(projects[1]).start()
    assert "STATUS=standby" in standby.wait_message("READY=1")
    return Pair(leader, standby)


def scrape(project: Project) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``/metrics`` of the daemon of ``project``: each family's samples as (labels, value)."""
    connection = UnixHTTPConnection(socket_path(project.config().state_dir))
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        connection.close()
    return {
        family.name: [(dict(s.labels), s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }
