"""``pipesched show RUN_ID``: one run — header, steps, outputs, files, the models it registered,
and a text timeline. An open run whose owner died without closing it shows ``running (owner
gone)``, and ``owner_alive: false`` in --json."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from scheduler.cli.options import config_option, json_option
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import (
    STATUS_STYLES,
    Bar,
    bar_fill,
    color_enabled,
    format_moment,
    is_tty,
    print_json,
    print_lines,
    print_table,
    run_duration,
    styled,
    timeline,
)
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.durations import format_duration
from scheduler.services.runs import get_run, owner_field, run_models, status_text
from scheduler.store.records import ModelRecord, RunDetail, StepAttempt, metrics_by_name

STEP_HEADERS = (
    "STEP",
    "TYPE",
    "STATUS",
    "DURATION",
    "ATTEMPTS",
    "EXIT",
    "REUSED FROM",
    "METRICS",
)
MAX_FILES_PER_STEP = 20


@click.command()
@click.argument("run_id")
@json_option
@config_option
@url_option
def show(run_id: str, as_json: bool, config_path: str | None) -> None:
    """One run: steps, statuses, durations, attempts, metrics, outputs and a timeline.

    RUN_ID may be any unique prefix of a run id."""
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import detail_from_json, model_from_json, remote_run

        found = remote_run(remote, run_id)
        if as_json:
            print_json(found)
            return
        detail = detail_from_json(found)
        models = [model_from_json(model) for model in found.get("models", [])]
        render_detail(detail, SYSTEM_CLOCK.now(), models)
        return
    with open_reads(read_config(config_path)) as store:
        detail = get_run(store, run_id)
        models = run_models(store, detail.run.id)
    if as_json:
        models_json = {"models": [model.to_json() for model in models]}
        print_json(detail.to_json() | owner_field(detail.run) | models_json)
        return
    render_detail(detail, SYSTEM_CLOCK.now(), models)


def render_detail(
    detail: RunDetail, now: datetime, models: list[ModelRecord] | None = None
) -> None:
    """The text page of ``show``; colour only on a terminal."""
    color = color_enabled()
    latest = detail.latest_attempts()
    print_lines(header_lines(detail, now, color), color=color)
    click.echo()
    print_table(STEP_HEADERS, step_rows(detail, latest, now), styles={2: STATUS_STYLES})
    sections = output_lines(latest) + file_lines(latest) + model_lines(models or [])
    if sections:
        click.echo()
        print_lines(sections, color=False)
    click.echo()
    click.echo("Timeline")
    bars = timeline_bars(latest)
    print_lines(
        timeline(bars, now=now, width=_track_width(bars), color=color, fill=bar_fill()),
        color=color,
    )


def header_lines(detail: RunDetail, now: datetime, color: bool) -> list[str]:
    run = detail.run
    shown = status_text(run)  # "running (owner gone)" is as bad as failed
    style = STATUS_STYLES.get(run.status if shown == run.status else "failed")
    status = styled(shown, style, color)
    if run.status_reason:
        status += f" ({run.status_reason})"
    pipeline = run.pipeline + (f" version {run.version}" if run.version else " (working copy)")
    fields: list[tuple[str, str]] = [
        ("Run", run.id + (" (recovered)" if run.recovered else "")),
        ("Pipeline", pipeline),
        ("Status", status),
        ("Trigger", run.trigger),
        ("Experiment", run.experiment),
        ("Parameters", _parameters(run.parameters)),
        ("Created", format_moment(run.created_at, now)),
        ("Started", format_moment(run.started_at, now)),
        ("Finished", format_moment(run.finished_at, now)),
        ("Duration", format_duration(run_duration(run.started_at, run.finished_at, now))),
    ]
    width = max(len(name) for name, _ in fields) + 2
    return [
        styled(name.ljust(width), "bold", color)
        + (value if name == "Status" else styled(value, None, color))
        for name, value in fields
    ]


def step_rows(
    detail: RunDetail, latest: dict[str, StepAttempt], now: datetime
) -> list[tuple[Any, ...]]:
    rows = []
    for name, last in latest.items():
        tried = [a for a in detail.attempts if a.step == name and a.started_at is not None]
        label = name if last.display_name in ("", name) else f"{name} ({last.display_name})"
        status = last.status + (f" ({last.status_reason})" if last.status_reason else "")
        duration = run_duration(last.started_at, last.finished_at, now) if last.started_at else None
        metrics = metrics_by_name(m for m in detail.metrics if m.step == name)
        rows.append(
            (
                label,
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


def output_lines(latest: dict[str, StepAttempt]) -> list[str]:
    rows = [
        (f"{step}/{data}", path) for step, a in latest.items() for data, path in a.outputs.items()
    ]
    if not rows:
        return []
    width = max(len(name) for name, _ in rows) + 2
    return ["Outputs", *(f"  {name.ljust(width)}{path}" for name, path in rows)]


def file_lines(latest: dict[str, StepAttempt]) -> list[str]:
    """Files each step kept in its ``outputs/`` folder (Azure's ./outputs convention)."""
    lines: list[str] = []
    for step, attempt in latest.items():
        if not attempt.workdir:
            continue
        folder = Path(attempt.workdir) / "outputs"
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        for path in files[:MAX_FILES_PER_STEP]:
            lines.append(f"  {step}  {path}")
        if len(files) > MAX_FILES_PER_STEP:
            lines.append(f"  {step}  ... and {len(files) - MAX_FILES_PER_STEP} more in {folder}")
    return ["Files", *lines] if lines else []


def model_lines(models: list[ModelRecord]) -> list[str]:
    """The model versions the run's steps registered: ``name:version`` from which step."""
    if not models:
        return []
    width = max(len(model.id) for model in models) + 2
    return [
        "Models",
        *(f"  {m.id.ljust(width)}{m.step or '-'}  {m.path}" for m in models),
    ]


def timeline_bars(latest: dict[str, StepAttempt]) -> list[Bar]:
    """Steps in start order; those that never started last, in definition order."""
    started = sorted((a for a in latest.values() if a.started_at is not None), key=_started_at)
    waiting = [a for a in latest.values() if a.started_at is None]
    return [Bar(a.step, a.started_at, a.finished_at, a.status) for a in [*started, *waiting]]


def _started_at(attempt: StepAttempt) -> datetime:
    assert attempt.started_at is not None
    return attempt.started_at


def _track_width(bars: list[Bar]) -> int:
    if not is_tty():
        return 40
    label = max([len("run"), *(len(b.label) for b in bars)])
    columns = shutil.get_terminal_size().columns
    return max(20, min(60, columns - label - 24))


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
