"""``pipesched schedules``: every schedule, enabled or not, like ``systemctl list-timers``: when it
fires next, when it fired last and with what result, and what its expression means."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from scheduler.cli.options import (
    config_option,
    json_option,
    load_config,
    no_headers_option,
    open_store,
)
from scheduler.cli.render import STATUS_STYLES, format_relative, print_json, print_table
from scheduler.clock import SYSTEM_CLOCK
from scheduler.errors import DefinitionErrors, NotFound

if TYPE_CHECKING:
    from scheduler.config import Config
    from scheduler.definitions.schedules import ScheduleDef
    from scheduler.store import Store
    from scheduler.triggers.summary import ScheduleSummary

HEADERS = ("NEXT", "LEFT", "LAST", "PASSED", "RESULT", "SCHEDULE", "PIPELINE", "WHEN")
LEFT_STYLES = {"disabled": "dim", "ended": "dim", "on": "cyan"}
RESULT_STYLES = {**STATUS_STYLES, "skipped": "yellow", "missed": "yellow"}


@click.command()
@json_option
@no_headers_option
@config_option
def schedules(as_json: bool, no_headers: bool, config_path: str | None) -> None:
    """Every schedule (enabled or not): next and last fire, last result, and when it fires in
    plain English. Reads the config and the store; no daemon needed."""
    config = load_config(config_path)
    now = SYSTEM_CLOCK.now()
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
    """The schedules of ``schedules.yaml`` and those created through the API, summarized at
    ``now`` and sorted by next fire (those that never fire again last, by name)."""
    from scheduler.definitions import build_schedule, discover_pipelines, load_schedules
    from scheduler.triggers.summary import summarize

    names = set(discover_pipelines(config))
    definitions: list[ScheduleDef] = load_schedules(config.schedules_file, config, names)
    states = store.schedule_states()
    in_file = {s.name for s in definitions}
    for state in states.values():
        if state.source != "api" or state.name in in_file or not state.definition:
            continue
        try:
            definitions.append(build_schedule(state.definition, config, names))
        except DefinitionErrors as exc:  # an API schedule whose pipeline went away, say
            click.echo(f"warning: API schedule '{state.name}': {exc.errors[0].message}", err=True)
    summaries = []
    for definition in definitions:
        state = states.get(definition.name)
        last_run = None
        if state is not None and state.last_run_id:
            try:
                last_run = store.get_run(state.last_run_id)
            except NotFound:
                last_run = None
        summaries.append(summarize(definition, state, last_run, now))
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(
        summaries,
        key=lambda s: (s.next_fire_time.astimezone(UTC) if s.next_fire_time else far, s.name),
    )


def row(summary: ScheduleSummary, now: datetime) -> tuple[str, ...]:
    zone = ZoneInfo(summary.timezone)
    upcoming = summary.next_fire_time
    if summary.kind == "on_change":
        left = "on file drop" if summary.enabled else "disabled"
    elif not summary.enabled:
        left = "disabled (override)" if summary.override is False else "disabled"
    elif upcoming is None:
        left = "ended"
    else:
        left = format_relative(upcoming, now).removeprefix("in ")
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
