"""``pipesched pipelines``: the pipelines found under ``pipelines_dir``, valid or not, with their
published versions, which one the endpoint runs, and the endpoint URLs."""

from __future__ import annotations

import os
import re
from contextlib import suppress
from pathlib import Path
from typing import Any

import click

from scheduler.cli.options import (
    config_option,
    json_option,
    no_headers_option,
    open_store,
    output_option,
    wants_json,
)
from scheduler.cli.reads import local_daemon, read_config, remote_daemon, url_option
from scheduler.cli.render import Column, print_json, print_table
from scheduler.core.errors import PipeschedError
from scheduler.services.daemon_http import API, DaemonClient, RemoteClient
from scheduler.services.pipeline_view import entries_from_daemon

# On a narrow terminal the description is shortened, then left out, then the status (with an
# invalid pipeline's first error) shortened; the name never. Endpoint and path are wide only.
COLUMNS = (
    Column("NAME", priority=0),
    Column("STEPS", priority=2),
    Column("VERSIONS", priority=3),
    Column("STATUS", priority=1, shrink="end", styles={"ok": "green", "invalid:": "red"}),
    Column("DESCRIPTION", priority=4, shrink="end", min_width=16),
    Column("ENDPOINT", wide=True),
    Column("PATH", wide=True),
)

_LOCATED = re.compile(r"(?P<where>.+?:\d+:\d+): error: (?P<message>.*)", re.DOTALL)


@click.command()
@json_option
@output_option
@no_headers_option
@config_option
@url_option
def pipelines(as_json: bool, output: str | None, no_headers: bool, config_path: str | None) -> None:
    """List the pipelines pipesched knows; an invalid one shows its first error. VERSIONS marks
    the endpoint's default version with '*'."""
    daemon: DaemonClient | RemoteClient | None = remote_daemon()
    config = None if daemon is not None else read_config(config_path)
    entries = None
    if daemon is not None:
        entries = entries_from_daemon(daemon.get(f"{API}/pipelines"))
    elif config is not None and (local := local_daemon(config)) is not None:
        # It checks the same files, with the pipeline models loaded; when it cannot answer,
        # the command reads them itself and says why in its own words.
        with suppress(PipeschedError):
            entries = entries_from_daemon(local.get(f"{API}/pipelines"))
    if entries is None:
        # lazy: sqlite3 and the cached listing load only when no daemon answers
        from scheduler.services.lean_pipelines import cached_pipelines

        assert config is not None
        entries = cached_pipelines(config)
    if entries is None:
        # lazy: the pipeline models and the store load only when nothing else answers
        from scheduler.services.lean_pipelines import list_pipeline_entries

        assert config is not None
        with open_store(config) as store:
            entries = list_pipeline_entries(config, store)
    if wants_json(as_json, output):
        print_json(entries)
        return
    rows = [
        (
            e["name"],
            len(e["steps"]) if e["status"] == "ok" else None,
            " ".join(v["version"] + ("*" if v["is_default"] else "") for v in e["versions"])
            or None,
            _status(e, wide=output == "wide"),
            e["description"] or None,
            e["endpoint"],
            e["path"],
        )
        for e in entries
    ]
    print_table(COLUMNS, rows, no_headers=no_headers, wide=output == "wide")


def _status(entry: dict[str, Any], *, wide: bool) -> str:
    """``ok``, ``published`` or ``invalid: <first error>``. Unless ``wide``, the error's
    message comes first and its place after it, from the pipeline's folder: ``invalid: script
    'x.py' of step 'a' not found (pipeline.yaml:2:36)``, so a narrow terminal shows the what."""
    if entry["status"] != "invalid":
        return str(entry["status"])
    error = str(entry["errors"][0])
    located = _LOCATED.match(error)
    if wide or located is None:
        return f"invalid: {error}"
    where = located["where"]
    if entry["path"]:
        where = where.removeprefix(str(Path(entry["path"]).parent) + os.sep)
    return f"invalid: {located['message']} ({where})"
