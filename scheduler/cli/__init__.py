"""The ``pipesched`` command. Subcommands live in their own modules and are imported only when
called, so ``pipesched runs`` never pays for the executor's or the API's imports."""

from __future__ import annotations

import importlib
import sys

import click

from scheduler.core.errors import DefinitionErrors, PipeschedError

# name -> (module, function, one-line help). The help is here so `pipesched --help` imports nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "daemon": ("scheduler.cli.cmd_daemon", "daemon", "Run the scheduler daemon in the foreground."),
    "validate": (
        "scheduler.cli.cmd_validate",
        "validate",
        "Check config, schedules and every pipeline.",
    ),
    "run": ("scheduler.cli.cmd_run", "run", "Run a pipeline now, in the foreground."),
    "runs": ("scheduler.cli.cmd_runs", "runs", "Run history, newest first."),
    "show": (
        "scheduler.cli.cmd_show",
        "show",
        "One run: steps, attempts, metrics, outputs, timeline.",
    ),
    "logs": ("scheduler.cli.cmd_logs", "logs", "A step's output; -f follows a running step."),
    "pipelines": (
        "scheduler.cli.cmd_pipelines",
        "pipelines",
        "Pipelines, their published versions and endpoint URLs.",
    ),
    "schedules": (
        "scheduler.cli.cmd_schedules",
        "schedules",
        "Every schedule: next and last fire, last result, in plain English.",
    ),
    "next": ("scheduler.cli.cmd_next", "next_", "Preview the fire times of a cron expression."),
    "cancel": ("scheduler.cli.cmd_cancel", "cancel", "Cancel a run: stop its steps, record it."),
    "schedule": (
        "scheduler.cli.cmd_schedule",
        "schedule",
        "Enable, disable or fire a schedule now.",
    ),
    "fires": ("scheduler.cli.cmd_fires", "fires", "Fire records: what each fire time became."),
    "publish": (
        "scheduler.cli.cmd_publish",
        "publish",
        "Publish an immutable snapshot of a pipeline under a version.",
    ),
    "token": ("scheduler.cli.cmd_token", "token", "Create, list or revoke API tokens."),
    "models": (
        "scheduler.cli.cmd_models",
        "models",
        "Registered models: versions, tags, the run and step of each.",
    ),
    "reload": (
        "scheduler.cli.cmd_reload",
        "reload",
        "Ask the running daemon to reload its definitions.",
    ),
    "completion": (
        "scheduler.cli.cmd_completion",
        "completion",
        "Print the shell completion script (bash, zsh or fish).",
    ),
    "metrics": (
        "scheduler.cli.cmd_metrics",
        "metrics",
        "A pipeline's metrics, one row per run, with a sparkline each.",
    ),
}


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


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line per problem and exit 1; bugs keep their traceback."""
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
        click.echo(f"error: {_with_causes(exc)}", err=True)
        sys.exit(1)


def _with_causes(exc: BaseException) -> str:
    parts = [str(exc)]
    cause = exc.__cause__
    while cause is not None:
        parts.append(str(cause))
        cause = cause.__cause__
    return ": ".join(parts)
