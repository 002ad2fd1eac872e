"""Options shared by every subcommand, and how a command finds its config and store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store  # lazy: commands a daemon answers never load SQLAlchemy

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    """``-c/--config`` accepted after the subcommand too (anywhere among its arguments)."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Config file [env: PIPESCHED_CONFIG].",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def no_headers_option(func: F) -> F:
    return click.option("--no-headers", is_flag=True, help="Leave out the header row.")(func)


def requested_config_path(config_path: str | None) -> str | None:
    """The command's own -c, else the group's: the config the user asked for, if any."""
    if config_path is None:
        ctx = click.get_current_context(silent=True)
        while ctx is not None and config_path is None:
            if isinstance(ctx.obj, dict):
                config_path = ctx.obj.get("config_path")
            ctx = ctx.parent
    return config_path


def find_config_path(config_path: str | None) -> Path:
    """The config file this command uses (see ``load_config``), without loading it."""
    from scheduler.definitions.config import find_config  # lazy: `next` and --help need no config

    return find_config(requested_config_path(config_path))


def load_config(config_path: str | None) -> Config:
    """The config this command uses: its own -c, else the group's -c / $PIPESCHED_CONFIG, else
    the default search."""
    from scheduler.definitions.config import load_config as _load  # lazy: as find_config_path

    return _load(find_config_path(config_path))


def open_store(config: Config) -> Store:
    from scheduler.store import Store  # lazy: commands a daemon answers never load SQLAlchemy

    return Store.open(config.database_url)
