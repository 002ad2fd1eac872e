"""``pipesched schedules``: every schedule, enabled or not, like ``systemctl list-timers``: when it
fires next, when it fired last and with what result, and what its expression means."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

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
from scheduler.cli.render import (
    STATUS_STYLES,
    Column,
    print_json,
    print_table,
    time_cell,
)
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.errors import PipeschedError
from scheduler.services.daemon_http import API, DaemonClient, RemoteClient
from scheduler.services.schedule_view import ScheduleSummary, summary_from_json

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store

NEXT_STYLES = {"disabled": "dim", "ended": "dim", "on": "cyan", "error": "red"}
RESULT_STYLES = {**STATUS_STYLES, "skipped": "yellow", "missed": "yellow", "error": "red"}
# On a narrow terminal the expression goes first (shortened before that), then the pipeline
# and the last fire; the schedule's name never.
COLUMNS = (
    Column("SCHEDULE", priority=0),
    Column("PIPELINE", priority=4),
    Column("WHEN", priority=5, shrink="end", min_width=14),
    Column("NEXT", priority=1, styles=NEXT_STYLES),
    Column("LAST", priority=3),
    Column("RESULT", priority=2, styles=RESULT_STYLES),
    Column("DESCRIPTION", wide=True),
)


@click.command()
@json_option
@output_option
@no_headers_option
@config_option
@url_option
def schedules(as_json: bool, output: str | None, no_headers: bool, config_path: str | None) -> None:
    """Every schedule (enabled or not): next and last fire, last result, and when it fires in
    plain English. Reads the config and the store; no daemon needed."""
    now = SYSTEM_CLOCK.now()
    daemon: DaemonClient | RemoteClient | None = remote_daemon()
    config = None if daemon is not None else read_config(config_path)
    summaries = None
    if daemon is not None:
        summaries = [summary_from_json(data) for data in daemon.get(f"{API}/schedules")]
    elif config is not None and (local := local_daemon(config)) is not None:
        # It reads the same files and store, with the code loaded; when it cannot answer,
        # the command reads them itself and says why in its own words.
        with suppress(PipeschedError):
            summaries = [summary_from_json(data) for data in local.get(f"{API}/schedules")]
    if summaries is None:
        assert config is not None
        summaries = cached(config, now)
    if summaries is None:
        assert config is not None
        with open_store(config) as store:
            summaries = collect(config, store, now)
    if wants_json(as_json, output):
        print_json([s.to_json() for s in summaries])
        return
    wide = output == "wide"
    rows = [row(s, now, wide=wide) for s in summaries]
    print_table(COLUMNS, rows, no_headers=no_headers, wide=wide)


def cached(config: Config, now: datetime) -> list[ScheduleSummary] | None:
    """Every schedule summarized at ``now`` from the listing the last full read kept, when it
    still holds; None otherwise."""
    # lazy: the triggers and sqlite3 load only when no daemon answers
    from scheduler.services.lean_schedules import cached_schedules

    return cached_schedules(config, now)


def collect(config: Config, store: Store, now: datetime) -> list[ScheduleSummary]:
    """Every schedule summarized at ``now`` (see ``scheduler.services.schedules.list_schedules``),
    with the definitions checked; what the next read needs of them is kept."""
    # lazy: the schedule models, triggers and store load only when no daemon answers
    from scheduler.services.lean_schedules import gather_schedules

    return gather_schedules(
        config, store, now, warn=lambda text: click.echo(f"warning: {text}", err=True)
    )


def row(summary: ScheduleSummary, now: datetime, *, wide: bool = False) -> tuple[str, ...]:
    """One schedule's cells: SCHEDULE PIPELINE WHEN NEXT LAST RESULT DESCRIPTION. Times are
    relative (``in 4h``, ``19h ago``); with ``wide``, absolute in the schedule's own zone too."""
    zone = ZoneInfo(summary.timezone)
    upcoming = summary.next_fire_time
    last = time_cell(summary.last_fire_time, now, wide=wide, zone=zone)
    if summary.error is not None:  # not served: the reason stands where the timing would
        return (summary.name, summary.pipeline, summary.error, "error", last, "error", "-")
    if summary.kind == "on_change":
        upcoming_text = "on file drop" if summary.enabled else "disabled"
    elif not summary.enabled:
        upcoming_text = "disabled (override)" if summary.override is False else "disabled"
    elif upcoming is None:
        upcoming_text = "ended"
    else:
        upcoming_text = time_cell(upcoming, now, wide=wide, zone=zone)
    unhandled = (summary.watch or {}).get("unhandled")
    if unhandled:  # files that could not be handled: ``fires`` says why
        upcoming_text += f" ({unhandled} not handled)"
    when = summary.expression
    if summary.kind != "on_change" and summary.timezone != "UTC":
        when += f" ({summary.timezone})"
    return (
        summary.name,
        summary.pipeline,
        when,
        upcoming_text,
        last,
        _result(summary),
        summary.description,
    )


def _result(summary: ScheduleSummary) -> str:
    """The last run's status when the last fire started one, else the fire's outcome."""
    if summary.last_outcome in ("started", "queued", "claimed") and summary.last_run_status:
        return summary.last_run_status
    if summary.last_outcome is not None:
        return summary.last_outcome
    return summary.last_run_status or "-"
