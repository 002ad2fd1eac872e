"""``pipesched metrics PIPELINE``: what a pipeline's runs logged, one row per run, newest first,
and on a terminal a sparkline per metric (oldest to newest, left to right) to see a trend."""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from typing import Any

import click

from scheduler.cli.options import (
    complete_metric,
    complete_pipeline,
    config_option,
    json_option,
    no_headers_option,
    output_option,
    wants_json,
)
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import is_tty, print_json, print_table, shorten, terminal_width, time_cell
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.services.runs import metric_history

SPARKS = "▁▂▃▄▅▆▇█"
FIXED_HEADERS = ("ID", "CREATED", "STATUS")


@click.command()
@click.argument("pipeline", shell_complete=complete_pipeline)
@click.option("--metric", help="Only this metric (by name).", shell_complete=complete_metric)
@click.option(
    "--last",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many of the newest runs; 0 for all.",
)
@json_option
@output_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: one row per run.")
@no_headers_option
@config_option
@url_option
def metrics(
    pipeline: str,
    metric: str | None,
    last: int,
    as_json: bool,
    output: str | None,
    as_csv: bool,
    no_headers: bool,
    config_path: str | None,
) -> None:
    """A pipeline's metrics, one row per run, newest first; a sparkline per metric on a
    terminal.

    \b
    Examples:
      pipesched metrics diabetes-training --metric accuracy --last 50
      pipesched metrics diabetes-training --csv > history.csv
    """
    as_json = wants_json(as_json, output)
    if as_json and as_csv:
        raise click.UsageError("--json and --csv: choose one")
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import remote_metrics

        rows = remote_metrics(remote, pipeline, metric=metric, last=last)
    else:
        with open_reads(read_config(config_path)) as store:
            history = metric_history(store, pipeline, metric=metric, last=last)
        rows = [row.to_json() for row in history]
    if as_json:
        print_json(rows)
        return
    columns = metric_columns(rows)
    if as_csv:
        write_csv(rows, columns, no_headers=no_headers)
        return
    if not rows:
        click.echo(f"no runs of pipeline {pipeline!r} yet", err=True)
        return
    now = SYSTEM_CLOCK.now()
    headers = FIXED_HEADERS + tuple(label for label, _, _ in columns)
    table = [
        (
            row["id"],
            time_cell(datetime.fromisoformat(row["created_at"]), now, wide=output == "wide"),
            row["status"],
            *(show_value(row["metrics"].get(step, {}).get(name)) for _, step, name in columns),
        )
        for row in rows
    ]
    print_table(headers, table, no_headers=no_headers, wide=output == "wide")
    if is_tty():
        lines = trend_lines(rows, columns, None if output == "wide" else terminal_width())
        if lines:
            click.echo()
            click.echo("\n".join(lines))


def metric_columns(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(header, step, name) for every metric any run logged, in the order first met; the header
    is the name alone unless two steps log the same name (then ``step.name``)."""
    seen: list[tuple[str, str]] = []
    for row in rows:
        for step, values in row["metrics"].items():
            for name in values:
                if (step, name) not in seen:
                    seen.append((step, name))
    steps_of: dict[str, int] = {}
    for _, name in seen:
        steps_of[name] = steps_of.get(name, 0) + 1
    return [(name if steps_of[name] == 1 else f"{step}.{name}", step, name) for step, name in seen]


def show_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return f"[{len(value)} values]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def write_csv(
    rows: list[dict[str, Any]], columns: list[tuple[str, str, str]], *, no_headers: bool
) -> None:
    """One line per run: id, created_at, status, then each metric (lists and rows as JSON)."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if not no_headers:
        writer.writerow(["id", "created_at", "status", *(label for label, _, _ in columns)])
    for row in rows:
        values = [row["metrics"].get(step, {}).get(name) for _, step, name in columns]
        writer.writerow(
            [
                row["id"],
                row["created_at"],
                row["status"],
                *(
                    "" if v is None else json.dumps(v) if isinstance(v, list | dict) else v
                    for v in values
                ),
            ]
        )
    sys.stdout.flush()


def sparkline(values: list[float]) -> str:
    """Unicode blocks, one per value: the lowest ``▁``, the highest ``█``."""
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[len(SPARKS) // 2] * len(values)
    top = len(SPARKS) - 1
    return "".join(SPARKS[round((v - low) / (high - low) * top)] for v in values)


def trend_lines(
    rows: list[dict[str, Any]], columns: list[tuple[str, str, str]], width: int | None = None
) -> list[str]:
    """A sparkline per numeric metric, oldest run first, with its range and latest value; in
    ``width`` columns when given (the newest runs that fit, the label shortened last)."""
    lines = []
    label_width = max((len(label) for label, _, _ in columns), default=0) + 2
    for label, step, name in columns:
        values = [
            float(v)
            for row in reversed(rows)
            if isinstance(v := row["metrics"].get(step, {}).get(name), int | float)
            and not isinstance(v, bool)
        ]
        if len(values) < 2:
            continue
        lines.append(_trend_line(label, label_width, values, width))
    return lines


def _trend_line(label: str, label_width: int, values: list[float], width: int | None) -> str:
    """Label, sparkline, last value, range. Short of room the range goes first, then the
    label is shortened; the sparkline keeps the newest values that fit, at least two."""
    last = f"  last {values[-1]:.4g}"
    extent = f"  min {min(values):.4g}  max {max(values):.4g}"
    if width is None:
        return f"{label.ljust(label_width)}{sparkline(values)}{last}{extent}"
    if label_width + 2 + len(last) + len(extent) > width:
        extent = ""
    label_width = min(label_width, max(width - 2 - len(last), 6))
    shown = shorten(label, label_width - 2, where="middle").ljust(label_width)
    room = max(width - label_width - len(last) - len(extent), 2)
    return shorten(f"{shown}{sparkline(values[-room:])}{last}{extent}", width)
