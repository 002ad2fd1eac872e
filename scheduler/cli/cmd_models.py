"""``pipesched models`` and ``pipesched models show NAME[:VERSION]``: the model registry — each
version's tags, and the run and step it came from. Read from the store, with or without a
daemon."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from scheduler.cli.options import (
    config_option,
    json_option,
    no_headers_option,
    output_option,
    wants_json,
)
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import (
    Column,
    ellipsis_for,
    field_lines,
    format_moment,
    is_tty,
    print_json,
    print_lines,
    print_table,
    shorten,
    terminal_width,
    time_cell,
)
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.services.models import get_model, list_models
from scheduler.store.records import ModelRecord

# On a narrow terminal the description goes first, then the step, the tags (shortened before
# that) and the run; the name and version never. Properties and path are wide only.
COLUMNS = (
    Column("NAME", priority=0),
    Column("VERSION", priority=0),
    Column("CREATED", priority=1),
    Column("RUN", priority=2),
    Column("STEP", priority=4),
    Column("TAGS", priority=3, shrink="end", min_width=16),
    Column("DESCRIPTION", priority=5, shrink="end", min_width=16),
    Column("PROPERTIES", wide=True),
    Column("PATH", wide=True),
)
MAX_FILES = 20


@click.group(invoke_without_command=True)
@click.option("--name", help="Only versions of this model.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="KEY[=VALUE]",
    help="Only versions with this tag (and value); repeatable.",
)
@click.option("--latest", is_flag=True, help="Only each model's newest version.")
@json_option
@output_option
@no_headers_option
@config_option
@url_option
@click.pass_context
def models(
    ctx: click.Context,
    name: str | None,
    tags: tuple[str, ...],
    latest: bool,
    as_json: bool,
    output: str | None,
    no_headers: bool,
    config_path: str | None,
) -> None:
    """Registered models by name, newest version first.

    \b
    Examples:
      pipesched models --tag area=diabetes
      pipesched models show diabetes-model:2
    """
    if ctx.invoked_subcommand is not None:
        return
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import model_from_json, remote_models

        found = remote_models(remote, name, tags=tags, latest=latest)
        if wants_json(as_json, output):
            print_json(found)
            return
        records = [model_from_json(data) for data in found]
    else:
        with open_reads(read_config(config_path)) as store:
            records = list_models(store, name, tags=tags, latest=latest)
    if wants_json(as_json, output):
        print_json([record.to_json() for record in records])
        return
    now = SYSTEM_CLOCK.now()
    wide = output == "wide"
    rows = [
        (
            r.name,
            r.version,
            time_cell(r.created_at, now, wide=wide),
            r.run_id,
            r.step,
            _pairs(r.tags) or None,
            r.description,
            _pairs(r.properties) or None,
            r.path,
        )
        for r in records
    ]
    print_table(COLUMNS, rows, no_headers=no_headers, wide=wide)


@models.command()
@click.argument("model", metavar="NAME[:VERSION]")
@json_option
@output_option
@config_option
@url_option
def show(model: str, as_json: bool, output: str | None, config_path: str | None) -> None:
    """One version of a model (the latest without :VERSION): where its files are, its tags and
    properties, and the run and step it came from."""
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import model_from_json, remote_model

        found = remote_model(remote, model)
        if wants_json(as_json, output):
            print_json(found)
            return
        record = model_from_json(found)
    else:
        with open_reads(read_config(config_path)) as store:
            record = get_model(store, model)
    if wants_json(as_json, output):
        print_json(record.to_json())
        return
    width = terminal_width() if is_tty() and output != "wide" else None
    print_lines(detail_lines(record, SYSTEM_CLOCK.now(), width=width))


def detail_lines(record: ModelRecord, now: datetime, *, width: int | None = None) -> list[str]:
    """The text page of ``models show``; with ``width``, long values fold onto lines of their
    own under the values' column, and file lines keep their end."""
    run = record.run_id or "-"
    if record.run_id and record.step:
        run += f" (step {record.step})"
    fields = [
        ("Model", record.id),
        ("Path", record.path),
        ("Run", run),
        ("Tags", _pairs(record.tags) or "-"),
        ("Properties", _pairs(record.properties) or "-"),
        ("Description", record.description or "-"),
        ("Created", format_moment(record.created_at, now)),
    ]
    lines = field_lines(fields, width=width)
    files = _files(Path(record.path))
    if files:
        room = width - 2 if width is not None else None
        lines += ["", "Files", *(f"  {_fit(line, room)}" for line in files)]
    return lines


def _fit(line: str, width: int | None) -> str:
    return line if width is None else shorten(line, width, where="start", mark=ellipsis_for())


def _files(path: Path) -> list[str]:
    if path.is_file():
        return [f"{path.name}  {path.stat().st_size} bytes"]
    if not path.is_dir():
        return []
    found = sorted(p for p in path.rglob("*") if p.is_file())
    lines = [f"{p.relative_to(path)}  {p.stat().st_size} bytes" for p in found[:MAX_FILES]]
    if len(found) > MAX_FILES:
        lines.append(f"... and {len(found) - MAX_FILES} more in {path}")
    return lines


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items())
