"""``pipesched schedules``: every schedule, enabled or not, like ``systemctl list-timers``: when it
fires next, when it fired last and with what result, and what its expression means."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from scheduler.cli.options import config_option, json_option, no_headers_option, open_store
from scheduler.cli.reads import local_daemon, read_config, remote_daemon, url_option
from scheduler.cli.render import STATUS_STYLES, format_relative, print_json, print_table
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.errors import PipeschedError
from scheduler.services.daemon_http import API, DaemonClient, RemoteClient
from scheduler.services.schedule_view import ScheduleSummary, summary_from_json

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store

HEADERS = ("NEXT", "LEFT", "LAST", "PASSED", "RESULT", "SCHEDULE", "PIPELINE", "WHEN")
LEFT_STYLES = {"disabled": "dim", "ended": "dim", "on": "cyan", "error": "red"}
RESULT_STYLES = {**STATUS_STYLES, "skipped": "yellow", "missed": "yellow", "error": "red"}


@click.command()
@json_option
@no_headers_option
@config_option
@url_option
def schedules(as_json: bool, no_headers: bool, config_path: str | None) -> None:
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
        with open_store(config) as store:
            summaries = collect(config, store, now)
    if as_json:
        print_json([s.to_json() for s in summaries])
        return
    rows = [row(s, now) for s in summaries]
    print_table(
        HEADERS,
        rows,
        no_headers=no_headers,
        styles={1: LEFT_STYLES, 4: RESULT_STYLES},
        no_wrap=(0, 2, 5),
    )


def collect(config: Config, store: Store, now: datetime) -> list[ScheduleSummary]:
    """Every schedule summarized at ``now`` (see ``scheduler.services.schedules.list_schedules``)."""
    # lazy: the schedule models, triggers and store load only when no daemon answers
    from scheduler.services.schedules import list_schedules

    return list_schedules(
        config, store, now, warn=lambda text: click.echo(f"warning: {text}", err=True)
    )


def row(summary: ScheduleSummary, now: datetime) -> tuple[str, ...]:
    zone = ZoneInfo(summary.timezone)
    upcoming = summary.next_fire_time
    if summary.error is not None:  # not served: the reason stands where the timing would
        last = summary.last_fire_time
        return (
            "-",
            "error",
            _absolute(last, zone),
            format_relative(last, now) if last else "-",
            "error",
            summary.name,
            summary.pipeline,
            summary.error,
        )
    if summary.kind == "on_change":
        left = "on file drop" if summary.enabled else "disabled"
    elif not summary.enabled:
        left = "disabled (override)" if summary.override is False else "disabled"
    elif upcoming is None:
        left = "ended"
    else:
        left = format_relative(upcoming, now).removeprefix("in ")
    unhandled = (summary.watch or {}).get("unhandled")
    if unhandled:  # files that could not be handled: ``fires`` says why
        left += f" ({unhandled} not handled)"
    last = summary.last_fire_time
    if summary.kind == "on_change":
        when = f"on_change: {summary.description}"
    else:
        when = f"{summary.expression} ({summary.timezone}): {summary.description}"
    return (
        _absolute(upcoming, zone),
        left,
        _absolute(last, zone),
        format_relative(last, now) if last else "-",
        _result(summary),
        summary.name,
        summary.pipeline,
        when,
    )


def _absolute(moment: datetime | None, zone: ZoneInfo) -> str:
    """``Mon 2026-03-09 00:00:00 CET`` in the schedule's own zone; ``-`` for never."""
    if moment is None:
        return "-"
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z")


def _result(summary: ScheduleSummary) -> str:
    """The last run's status when the last fire started one, else the fire's outcome."""
    if summary.last_outcome in ("started", "queued", "claimed") and summary.last_run_status:
        return summary.last_run_status
    if summary.last_outcome is not None:
        return summary.last_outcome
    return summary.last_run_status or "-"
