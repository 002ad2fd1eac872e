"""``pipesched token create|list|revoke``: bearer tokens for the REST API."""

from __future__ import annotations

import click

from scheduler.cli.options import (
    config_option,
    json_option,
    load_config,
    no_headers_option,
    open_store,
)
from scheduler.cli.render import print_json, print_table
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


@token.command(name="list")
@json_option
@no_headers_option
@config_option
def list_(as_json: bool, no_headers: bool, config_path: str | None) -> None:
    """Every token, revoked ones too (never their secrets)."""
    config = load_config(config_path)
    with open_store(config) as store:
        tokens = list_tokens(store)
    if as_json:
        print_json(tokens)
        return
    rows = [
        (t["name"], t["created_at"], t["last_used_at"], "revoked" if t["revoked"] else "active")
        for t in tokens
    ]
    print_table(
        ("NAME", "CREATED", "LAST USED", "STATUS"),
        rows,
        no_headers=no_headers,
        styles={3: {"active": "green", "revoked": "red"}},
    )


@token.command()
@click.argument("name")
@config_option
def revoke(name: str, config_path: str | None) -> None:
    """Revoke token NAME: requests with it get 401 from now on."""
    config = load_config(config_path)
    with open_store(config) as store:
        revoke_token(store, name)
    click.echo(f"token '{name}' revoked")
