"""``pipesched show RUN_ID``: one run — header, steps, outputs, files, the models it registered,
and a text timeline. An open run whose owner died without closing it shows ``running (owner
gone)``, and ``owner_alive: false`` in --json."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from scheduler.cli.options import (
    complete_pipeline,
    complete_run_id,
    config_option,
    json_option,
    output_option,
    wants_json,
)
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import (
    STATUS_STYLES,
    Bar,
    Column,
    arrow_for,
    bar_fill,
    color_enabled,
    ellipsis_for,
    field_lines,
    format_moment,
    is_tty,
    print_json,
    print_lines,
    print_table,
    run_duration,
    terminal_width,
    timeline,
)
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import format_duration
from scheduler.core.runtimes import RunTimes
from scheduler.services.runs import get_run, owner_field, run_models, status_text
from scheduler.store.records import ModelRecord, RunDetail, StepAttempt, metrics_by_name

# On a narrow terminal the display name goes first, then the type, the run a step was reused
# from and the metrics (shortened before that); the step id never.
STEP_COLUMNS = (
    Column("STEP", priority=0),
    Column("NAME", priority=8, shrink="end"),
    Column("TYPE", priority=7),
    Column("STATUS", priority=1, shrink="end", min_width=9, styles=STATUS_STYLES),
    Column("DURATION", priority=2),
    Column("ATTEMPTS", priority=4),
    Column("EXIT", priority=3),
    Column("REUSED FROM", priority=6),
    Column("METRICS", priority=5, shrink="end", min_width=16),
)
# Outputs, files and models: the name stays, the path keeps its end (the file name) and goes
# after what stands between them.
SECTION_PATH = Column("PATH", priority=1, shrink="start", min_width=24)
MAX_FILES_PER_STEP = 20
TIMELINE_WIDTH = 60  # most cells a timeline's track takes on a terminal


@click.command()
@click.argument("run_id", shell_complete=complete_run_id)
@click.option(
    "--pipeline",
    help="With `latest`: the newest run of this pipeline.",
    shell_complete=complete_pipeline,
)
@json_option
@output_option
@config_option
@url_option
def show(
    run_id: str, pipeline: str | None, as_json: bool, output: str | None, config_path: str | None
) -> None:
    """One run: steps, statuses, durations, attempts, metrics, outputs and a timeline.

    RUN_ID may be any unique prefix of a run id, or `latest`."""
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import (
            detail_from_json,
            model_from_json,
            remote_run,
            remote_run_ref,
        )

        found = remote_run(remote, remote_run_ref(remote, run_id, pipeline))
        if wants_json(as_json, output):
            print_json(found)
            return
        detail = detail_from_json(found)
        models = [model_from_json(model) for model in found.get("models", [])]
        render_detail(detail, SYSTEM_CLOCK.now(), models, wide=output == "wide")
        return
    with open_reads(read_config(config_path)) as store:
        detail = get_run(store, run_id, pipeline=pipeline)
        models = run_models(store, detail.run.id)
    if wants_json(as_json, output):
        models_json = {"models": [model.to_json() for model in models]}
        print_json(detail.to_json() | owner_field(detail.run) | models_json)
        return
    render_detail(detail, SYSTEM_CLOCK.now(), models, wide=output == "wide")


def render_detail(
    detail: RunDetail,
    now: datetime,
    models: list[ModelRecord] | None = None,
    *,
    wide: bool = False,
) -> None:
    """The text page of ``show``; colour only on a terminal. On a terminal every line fits its
    width (long values fold, tables give way, the timeline narrows) unless ``wide``."""
    color = color_enabled()
    width = terminal_width() if is_tty() and not wide else None
    latest = detail.latest_attempts()
    print_lines(header_lines(detail, now, color, width=width))
    click.echo()
    print_table(STEP_COLUMNS, step_rows(detail, latest, now), wide=wide)
    sections: list[tuple[str, Sequence[tuple[str, ...]]]] = [
        ("Outputs", output_rows(latest)),
        ("Files", file_rows(latest)),
        ("Models", model_rows(models or [])),
    ]
    for title, rows in sections:
        if rows:
            click.echo()
            click.echo(title)
            between = len(rows[0]) - 2  # a model's step, between its name and its path
            columns = [Column("", priority=0), *[Column("", priority=2)] * between, SECTION_PATH]
            print_table(columns, rows, no_headers=True, wide=wide, indent=2)
    click.echo()
    click.echo("Timeline")
    bars = timeline_bars(latest)
    track = TIMELINE_WIDTH if is_tty() else 40
    print_lines(
        timeline(
            bars,
            now=now,
            width=track,
            color=color,
            fill=bar_fill(),
            max_width=width,
            mark=ellipsis_for(),
        )
    )


def header_lines(
    detail: RunDetail, now: datetime, color: bool, *, width: int | None = None
) -> list[str]:
    """``Label  value`` lines; with ``width``, a long value folds onto lines of its own under
    the values' column."""
    run = detail.run
    shown = status_text(run)  # "running (owner gone)" is as bad as failed
    style = STATUS_STYLES.get(run.status if shown == run.status else "failed")
    status = shown + (f" ({run.status_reason})" if run.status_reason else "")
    pipeline = run.pipeline + (f" version {run.version}" if run.version else " (working copy)")
    fields: list[tuple[str, str]] = [
        ("Run", run.id + (" (recovered)" if run.recovered else "")),
        ("Pipeline", pipeline),
        ("Status", status),
        ("Trigger", run.trigger),
        *_stands_for(run.stands_for),
        ("Experiment", run.experiment),
        ("Parameters", _parameters(run.parameters)),
        ("Created", format_moment(run.created_at, now)),
        ("Started", format_moment(run.started_at, now)),
        ("Finished", format_moment(run.finished_at, now)),
        ("Duration", format_duration(run_duration(run.started_at, run.finished_at, now))),
    ]
    return field_lines(fields, width=width, color=color, lead_styles={"Status": (shown, style)})


def _stands_for(times: RunTimes) -> list[tuple[str, str]]:
    """The time a schedule's run stands for; a run requested by hand stands for its creation,
    which ``Created`` shows already."""
    if not times.from_schedule:
        return []
    return [("Stands for", times.describe(arrow_for()))]


def step_rows(
    detail: RunDetail, latest: dict[str, StepAttempt], now: datetime
) -> list[tuple[Any, ...]]:
    rows = []
    for name, last in latest.items():
        tried = [a for a in detail.attempts if a.step == name and a.started_at is not None]
        status = last.status + (f" ({last.status_reason})" if last.status_reason else "")
        duration = run_duration(last.started_at, last.finished_at, now) if last.started_at else None
        metrics = metrics_by_name(m for m in detail.metrics if m.step == name)
        rows.append(
            (
                name,
                None if last.display_name in ("", name) else last.display_name,
                last.type,
                status,
                format_duration(duration),
                len(tried) or None,
                last.exit_code,
                last.reused_from,
                _metrics(metrics) or None,
            )
        )
    return rows


def output_rows(latest: dict[str, StepAttempt]) -> list[tuple[str, str]]:
    """``(step/data, path)`` of every output the steps declared."""
    return [
        (f"{step}/{data}", path) for step, a in latest.items() for data, path in a.outputs.items()
    ]


def file_rows(latest: dict[str, StepAttempt]) -> list[tuple[str, str]]:
    """Files each step kept in its ``outputs/`` folder (Azure's ./outputs convention)."""
    rows: list[tuple[str, str]] = []
    for step, attempt in latest.items():
        if not attempt.workdir:
            continue
        folder = Path(attempt.workdir) / "outputs"
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        rows += [(step, str(path)) for path in files[:MAX_FILES_PER_STEP]]
        if len(files) > MAX_FILES_PER_STEP:
            rows.append((step, f"... and {len(files) - MAX_FILES_PER_STEP} more in {folder}"))
    return rows


def model_rows(models: list[ModelRecord]) -> list[tuple[str, str, str]]:
    """The model versions the run's steps registered: ``name:version``, the step, the path."""
    return [(m.id, m.step or "-", m.path) for m in models]


def timeline_bars(latest: dict[str, StepAttempt]) -> list[Bar]:
    """Steps in start order; those that never started last, in definition order."""
    started = sorted((a for a in latest.values() if a.started_at is not None), key=_started_at)
    waiting = [a for a in latest.values() if a.started_at is None]
    return [Bar(a.step, a.started_at, a.finished_at, a.status) for a in [*started, *waiting]]


def _started_at(attempt: StepAttempt) -> datetime:
    assert attempt.started_at is not None
    return attempt.started_at


def _parameters(parameters: dict[str, Any]) -> str:
    if not parameters:
        return "-"
    return ", ".join(f"{name}={value}" for name, value in parameters.items())


def _metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_metric_value(value)}" for name, value in metrics.items())


def _metric_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if len(value) <= 3 and all(not isinstance(v, dict | list) for v in value):
            return "[" + ", ".join(_metric_value(v) for v in value) + "]"
        return f"[{len(value)} values]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_metric_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and os.path.isabs(value):
        return os.path.basename(value)  # an image: its file name is enough here
    return str(value)
