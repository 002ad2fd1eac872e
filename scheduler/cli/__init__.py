"""The ``pipesched`` command. Subcommands live in their own modules and are imported only when
called, so ``pipesched runs`` never pays for the executor's or the API's imports; and a plain
``pipesched run NAME`` of a pipeline whose plan is compiled starts its first step before click
is even imported (``cli.run_compiled``). Every other command line goes through the click group
(``cli.group``)."""

from __future__ import annotations

import sys
from typing import Any

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
    "notify": (
        "scheduler.cli.cmd_notify",
        "notify",
        "Alerts: send a sample event to every notify target.",
    ),
    "reload": (
        "scheduler.cli.cmd_reload",
        "reload",
        "Ask the running daemon to reload its definitions.",
    ),
    "status": (
        "scheduler.cli.cmd_status",
        "status",
        "The daemon, its store, and the daemons sharing the store.",
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
    "backup": (
        "scheduler.cli.cmd_backup",
        "backup",
        "Copy the store, while the daemon runs, to a file or folder.",
    ),
    "prune": (
        "scheduler.cli.cmd_prune",
        "prune",
        "Apply retention now: delete old runs; --dry-run says what.",
    ),
    "backfill": (
        "scheduler.cli.cmd_backfill",
        "backfill",
        "Run each nominal time of a schedule in a range once; `backfill cancel ID`.",
    ),
    "backfills": ("scheduler.cli.cmd_backfill", "backfills", "Backfills and their progress."),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line per problem and exit 1; bugs keep their traceback."""
    plain = plain_run_request(sys.argv[1:] if argv is None else argv)
    if plain is not None:
        from scheduler.cli.run_compiled import run_plain  # lazy: this command line only

        run_plain(*plain)  # returns only when the pipeline has no current plan
    from scheduler.cli.group import click_main  # lazy: click, for every other command line

    return click_main(argv)


def plain_run_request(args: list[str]) -> tuple[str | None, str, bool] | None:
    """(config path, pipeline, --json) when ``args`` is ``[-c CONFIG] run NAME`` with nothing
    but ``--json`` and ``-c CONFIG`` after ``run``, read as click reads them (the command's
    ``-c`` over the group's, the last of each); None for any other command line."""
    rest = list(args)
    group_config = None
    while rest and rest[0] != "run":
        group_config = _take_config(rest)
        if group_config is None:
            return None
    if not rest:
        return None
    del rest[0]
    command_config: str | None = None
    pipeline: str | None = None
    as_json = False
    while rest:
        if rest[0] == "--json":
            del rest[0]
            as_json = True
        elif rest[0].startswith("-"):
            command_config = _take_config(rest)
            if command_config is None:
                return None
        elif pipeline is None:
            pipeline = rest.pop(0)
        else:
            return None
    if pipeline is None:
        return None
    return command_config or group_config, pipeline, as_json


def _take_config(rest: list[str]) -> str | None:
    """Take ``-c VALUE``, ``--config VALUE`` or ``--config=VALUE`` off the front of ``rest``;
    None when it starts with anything else (or a value click might read otherwise)."""
    first = rest[0]
    if first in ("-c", "--config"):
        if len(rest) < 2 or not rest[1] or rest[1].startswith("-"):
            return None
        value = rest[1]
        del rest[:2]
        return value
    if first.startswith("--config=") and len(first) > len("--config="):
        del rest[0]
        return first.removeprefix("--config=")
    return None


def with_causes(exc: BaseException) -> str:
    """An error's message followed by its causes', as one line."""
    parts = [str(exc)]
    cause = exc.__cause__
    while cause is not None:
        parts.append(str(cause))
        cause = cause.__cause__
    return ": ".join(parts)


def __getattr__(name: str) -> Any:
    """``cli`` and ``LazyGroup`` live in ``cli.group``, imported on first use."""
    if name in ("cli", "LazyGroup"):
        from scheduler.cli import group  # lazy: click, only when the group is asked for

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
