"""``pipesched backup PATH``: a consistent copy of the store while the daemon runs."""

from __future__ import annotations

import click

from scheduler.cli.options import config_option, json_option, load_config
from scheduler.cli.render import print_json
from scheduler.dispatch.freespace import human_bytes
from scheduler.services.backup import backup_store


@click.command()
@click.argument("path", type=click.Path())
@click.option("--force", is_flag=True, help="Replace PATH when it exists.")
@json_option
@config_option
def backup(path: str, force: bool, as_json: bool, config_path: str | None) -> None:
    """Copy the store to PATH, while the daemon goes on (a folder: a timestamped file in it).

    \b
    SQLite: one consistent snapshot, written to a private file (0600) that appears whole or
    not at all; PATH is never replaced without --force. PostgreSQL: prints the pg_dump
    command that copies the store, and exits 1.
    Restore: stop the daemon, copy the file over the database, delete the database's -wal
    and -shm files, start the daemon.
    """
    config = load_config(config_path)
    report = backup_store(config.database_url, path, force=force)
    if as_json:
        print_json(report)
        return
    runs = report["runs"]
    click.echo(
        f"backed up {report['database']} to {report['path']}: {human_bytes(report['bytes'])}, "
        f"schema {report['schema_revision'] or '-'}, "
        f"{'no' if runs is None else runs} run{'' if runs == 1 else 's'}, "
        f"in {report['seconds']:.2f} s"
    )
