"""``pipesched next CRON``: preview an expression's fire times through the daemon's own trigger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from scheduler.cli.options import config_option, json_option, output_option, wants_json
from scheduler.cli.render import (
    Column,
    fold,
    format_absolute,
    is_tty,
    print_json,
    print_lines,
    print_table,
    short_span,
    terminal_width,
)
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.errors import PipeschedError
from scheduler.definitions.timing import zone_name
from scheduler.triggers import cron_trigger, describe_cron

# A fire time names its row; the time left goes first on a (very) narrow terminal.
NEXT_COLUMNS = (Column("NEXT", priority=0), Column("LEFT", priority=1))


def preview(expression: str, timezone: str, count: int, now: datetime) -> dict[str, Any]:
    """``{expression, timezone, description, next_fire_times}``: the next ``count`` fire times
    after ``now`` in the zone (datetimes), or PipeschedError saying what is wrong."""
    try:
        zone = zone_name(timezone)
    except ValueError as exc:
        raise PipeschedError(
            str(exc), hint="use an IANA name such as UTC or Europe/Berlin"
        ) from None
    try:
        trigger = cron_trigger(expression, zone)
        description = describe_cron(expression)
    except ValueError as exc:
        raise PipeschedError(str(exc), hint='e.g. "0 0 * * MON"; see crontab(5)') from None
    return {
        "expression": expression,
        "timezone": zone,
        "description": description,
        "next_fire_times": trigger.next_times(now, count),
    }


@click.command(name="next")
@click.argument("expression", nargs=-1, required=True)
@click.option(
    "--tz",
    "timezone",
    default="UTC",
    show_default=True,
    envvar="PIPESCHED_TZ",
    help="Time zone the expression is read in (IANA or Windows name) [env: PIPESCHED_TZ].",
)
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1, max=10_000),
    default=5,
    show_default=True,
    help="How many fire times to show.",
)
@json_option
@output_option
@config_option
def next_(
    expression: tuple[str, ...],
    timezone: str,
    count: int,
    as_json: bool,
    output: str | None,
    config_path: str | None,
) -> None:
    """Show the next fire times of a cron EXPRESSION (5 fields, or 6 with seconds first, or
    @daily & co.), computed by the code the daemon fires with.

    \b
    Examples:  pipesched next "0 0 * * MON" --tz Europe/Berlin
               pipesched next "*/15 * * * *" -n 10 --json
    """
    now = SYSTEM_CLOCK.now()
    result = preview(" ".join(expression), timezone, count, now)
    times: list[datetime] = result["next_fire_times"]
    if wants_json(as_json, output):
        print_json(
            {**result, "next_fire_times": [t.isoformat(timespec="microseconds") for t in times]}
        )
        return
    heading = f"{result['expression']} ({result['timezone']}): {result['description']}"
    print_lines(fold(heading, terminal_width()) if is_tty() else [heading])
    rows = [(format_absolute(t, t.tzinfo), short_span((t - now).total_seconds())) for t in times]
    print_table(NEXT_COLUMNS, rows, wide=output == "wide")
    if len(times) < count:
        click.echo(f"(only {len(times)}: the expression matches no later time within 50 years)")
