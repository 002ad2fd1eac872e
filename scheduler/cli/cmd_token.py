"""``pipesched token create|list|revoke``: bearer tokens for the REST API."""

from __future__ import annotations

from datetime import datetime

import click

from scheduler.cli.options import (
    config_option,
    json_option,
    load_config,
    no_headers_option,
    open_store,
    output_option,
    wants_json,
)
from scheduler.cli.render import Column, print_json, print_table, time_cell
from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.services.tokens import create_token, list_tokens, revoke_token


@click.group()
@config_option
@click.pass_context
def token(ctx: click.Context, config_path: str | None) -> None:
    """API tokens: created once, shown once, stored hashed."""
    if config_path is not None:
        ctx.ensure_object(dict)["config_path"] = config_path


@token.command()
@click.argument("name")
@config_option
def create(name: str, config_path: str | None) -> None:
    """Create token NAME and print it (alone, on the last line): it is never shown again."""
    config = load_config(config_path)
    with open_store(config) as store:
        secret = create_token(store, name)
    click.echo(f"token '{name}' created; it is shown only now:", err=True)
    click.echo(secret)


COLUMNS = (
    Column("NAME", priority=0),
    Column("CREATED", priority=2),
    Column("LAST USED", priority=3),
    Column("STATUS", priority=1, styles={"active": "green", "revoked": "red"}),
)


@token.command(name="list")
@json_option
@output_option
@no_headers_option
@config_option
def list_(as_json: bool, output: str | None, no_headers: bool, config_path: str | None) -> None:
    """Every token, revoked ones too (never their secrets)."""
    config = load_config(config_path)
    with open_store(config) as store:
        tokens = list_tokens(store)
    if wants_json(as_json, output):
        print_json(tokens)
        return
    now = SYSTEM_CLOCK.now()
    wide = output == "wide"
    rows = [
        (
            t["name"],
            time_cell(_moment(t["created_at"]), now, wide=wide),
            time_cell(_moment(t["last_used_at"]), now, wide=wide),
            "revoked" if t["revoked"] else "active",
        )
        for t in tokens
    ]
    print_table(COLUMNS, rows, no_headers=no_headers, wide=wide)


def _moment(text: str | None) -> datetime | None:
    """A time of ``list_tokens`` (ISO 8601 with microseconds) as a datetime; None for never."""
    return datetime.fromisoformat(text) if text else None


@token.command()
@click.argument("name")
@config_option
def revoke(name: str, config_path: str | None) -> None:
    """Revoke token NAME: requests with it get 401 from now on."""
    config = load_config(config_path)
    with open_store(config) as store:
        revoke_token(store, name)
    click.echo(f"token '{name}' revoked")
