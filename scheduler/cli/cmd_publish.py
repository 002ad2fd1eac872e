"""``pipesched publish PIPELINE``: snapshot the working copy under a version label."""

from __future__ import annotations

import click

from scheduler.cli.options import (
    complete_pipeline,
    config_option,
    json_option,
    load_config,
    open_store,
)
from scheduler.cli.render import print_json
from scheduler.services.publish import endpoint_url
from scheduler.services.publish import publish as do_publish


@click.command()
@click.argument("pipeline", shell_complete=complete_pipeline)
@click.option("--version", "version", default=None, help="Version label [default: next integer].")
@click.option("--description", default=None, help="What this version is [default: the pipeline's].")
@json_option
@config_option
def publish(
    pipeline: str,
    version: str | None,
    description: str | None,
    as_json: bool,
    config_path: str | None,
) -> None:
    """Publish PIPELINE: an immutable snapshot of its definition and source directories that
    later edits never change, runnable at its own endpoint URL."""
    config = load_config(config_path)
    with open_store(config) as store:
        published = do_publish(config, store, pipeline, version=version, description=description)
    url = endpoint_url(config, published.pipeline, published.version)
    if as_json:
        print_json({**published.to_json(), "url": url})
        return
    default = " (the endpoint's default)" if published.is_default else ""
    click.echo(f"published {published.id}{default}")
    click.echo(f"endpoint: {url}")
