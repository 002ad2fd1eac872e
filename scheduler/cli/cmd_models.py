"""``pipesched models`` and ``pipesched models show NAME[:VERSION]``: the model registry — each
version's tags, and the run and step it came from. Read from the store, with or without a
daemon."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from scheduler.cli.options import config_option, json_option, no_headers_option
from scheduler.cli.reads import open_reads, read_config, remote_daemon, url_option
from scheduler.cli.render import format_moment, print_json, print_lines, print_table
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.services.models import get_model, list_models
from scheduler.store.records import ModelRecord

HEADERS = ("NAME", "VERSION", "CREATED", "RUN", "STEP", "TAGS", "DESCRIPTION")
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
        if as_json:
            print_json(found)
            return
        records = [model_from_json(data) for data in found]
    else:
        with open_reads(read_config(config_path)) as store:
            records = list_models(store, name, tags=tags, latest=latest)
    if as_json:
        print_json([record.to_json() for record in records])
        return
    now = SYSTEM_CLOCK.now()
    rows = [
        (
            r.name,
            r.version,
            format_moment(r.created_at, now),
            r.run_id,
            r.step,
            _pairs(r.tags) or None,
            r.description,
        )
        for r in records
    ]
    print_table(HEADERS, rows, no_headers=no_headers)


@models.command()
@click.argument("model", metavar="NAME[:VERSION]")
@json_option
@config_option
@url_option
def show(model: str, as_json: bool, config_path: str | None) -> None:
    """One version of a model (the latest without :VERSION): where its files are, its tags and
    properties, and the run and step it came from."""
    remote = remote_daemon()
    if remote is not None:
        # lazy: the REST reads load only with --url
        from scheduler.services.remote_reads import model_from_json, remote_model

        found = remote_model(remote, model)
        if as_json:
            print_json(found)
            return
        record = model_from_json(found)
    else:
        with open_reads(read_config(config_path)) as store:
            record = get_model(store, model)
    if as_json:
        print_json(record.to_json())
        return
    print_lines(detail_lines(record, SYSTEM_CLOCK.now()), color=False)


def detail_lines(record: ModelRecord, now: datetime) -> list[str]:
    """The text page of ``models show``."""
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
    width = max(len(label) for label, _ in fields) + 2
    lines = [label.ljust(width) + value for label, value in fields]
    files = _files(Path(record.path))
    if files:
        lines += ["", "Files", *(f"  {line}" for line in files)]
    return lines


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
