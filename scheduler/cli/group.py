"""The click group of ``pipesched``: every command but a plain ``pipesched run`` of a compiled
plan goes through it (``scheduler.cli.main`` decides)."""

from __future__ import annotations

import importlib
import sys

import click

from scheduler.cli import COMMANDS, with_causes
from scheduler.core.errors import DefinitionErrors, PipeschedError


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, _, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    envvar="PIPESCHED_CONFIG",
    type=click.Path(dir_okay=False),
    help="Config file [env: PIPESCHED_CONFIG; default ./config/pipesched.yaml, "
    "then /etc/pipesched/pipesched.yaml]. Accepted after the subcommand too.",
)
@click.option(
    "--url",
    metavar="URL",
    help="Ask the daemon at URL (its REST API, with the token in $PIPESCHED_TOKEN) instead of "
    "this machine's config and store [env: PIPESCHED_URL]. Reads and control commands only.",
)
@click.version_option(package_name="pipesched")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, url: str | None) -> None:
    """pipesched runs machine-learning pipelines on schedules and keeps their history.

    \b
    Start with:  pipesched validate
                 pipesched run diabetes-training
                 pipesched runs
                 pipesched show <RUN_ID>
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["url"] = url


def click_main(argv: list[str] | None = None) -> int:
    """Through click: user errors print one line per problem and exit 1; bugs keep their traceback."""
    try:
        result = cli.main(args=argv, prog_name="pipesched", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except DefinitionErrors as exc:
        for error in exc.errors:
            click.echo(str(error), err=True)
        click.echo(f"{exc.message} found", err=True)
        sys.exit(1)
    except PipeschedError as exc:
        click.echo(f"error: {with_causes(exc)}", err=True)
        sys.exit(1)
