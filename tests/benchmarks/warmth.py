"""Helpers for the warm-step figures: a project whose local compute target is warm, and a
daemon's zygote read from its ``/metrics`` (over the daemon's unix socket)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import wait_until
from tests.daemon_harness import UnixHTTPConnection
from tests.projects import Project, make_project

TARGET = "local"


def warm_project(root: Path, modules: Sequence[str] | None, *, max_workers: int = 4) -> Project:
    """A project whose local target lists ``modules`` as ``warm_imports`` (None: cold)."""
    local: dict = {"type": "local", "max_workers": max_workers}
    if modules is not None:
        local["warm_imports"] = list(modules)
    return make_project(root, compute={TARGET: local})


def metrics(project: Project) -> dict[str, float]:
    """The daemon's ``/metrics`` samples of the local target's zygote, by metric name (a
    counter's ``how`` label folded into its name: ``pipesched_warm_steps_total:forked``)."""
    from scheduler.services.daemon_http import socket_path  # lazy: after the project exists

    conn = UnixHTTPConnection(socket_path(project.state_dir))
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found: dict[str, float] = {}
    pattern = re.compile(r"^(pipesched_(?:zygote|warm)\w*)\{([^}]*)\} (\S+)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if match is None or f'target="{TARGET}"' not in match.group(2):
            continue
        how = re.search(r'how="(\w+)"', match.group(2))
        name = match.group(1) + (f":{how.group(1)}" if how else "")
        found[name] = float(match.group(3))
    return found


def wait_zygote_ready(project: Project, timeout: float = 120) -> dict[str, float]:
    """Once the daemon's zygote for the local target is up: its metrics."""
    return wait_until(
        lambda: (m := metrics(project)).get("pipesched_zygote_up") == 1.0 and m,
        timeout=timeout,
        interval=0.1,
        message="the daemon's zygote is ready",
    )


def forked_steps(project: Project) -> int:
    return int(metrics(project).get("pipesched_warm_steps_total:forked", 0))


def spawned_steps(project: Project) -> int:
    return int(metrics(project).get("pipesched_warm_steps_total:spawned", 0))
