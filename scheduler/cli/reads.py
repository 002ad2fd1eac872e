"""How a read command finds its config and history cheaply, and whether a remote daemon answers
instead.

A read command is a new process each time, so what it imports is most of what it costs: the
config is read without pydantic when it is plainly valid (``definitions.config.read_config``),
and the history with the standard library's ``sqlite3`` on the default store
(``store.reads.open_history``). With ``--url``/``$PIPESCHED_URL`` (and ``$PIPESCHED_TOKEN``) the
command asks that daemon's REST API instead and reads nothing local.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from scheduler.cli.options import find_config_path
from scheduler.core.errors import PipeschedError

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.services.daemon_http import DaemonClient, RemoteClient
    from scheduler.store.reads import HistoryReads

ENV_URL = "PIPESCHED_URL"
ENV_TOKEN = "PIPESCHED_TOKEN"


F = TypeVar("F", bound=Callable[..., Any])


def url_option(func: F) -> F:
    """``--url`` accepted after the subcommand too (as ``pipesched --url URL``): kept on the
    context, where ``remote_daemon`` finds it, so commands take no extra argument."""
    return click.option(
        "--url",
        metavar="URL",
        expose_value=False,
        callback=_remember_url,
        help="Ask the daemon at URL (token in $PIPESCHED_TOKEN) [env: PIPESCHED_URL].",
    )(func)


def _remember_url(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.ensure_object(dict)["url"] = value


def read_config(config_path: str | None) -> Config:
    """The config this command uses (as ``options.load_config`` finds it), read without
    pydantic unless the file needs the full check."""
    # lazy: definitions load only when a command needs a config (`next` and --help do not)
    from scheduler.definitions.config import read_config as _read

    return _read(find_config_path(config_path))


@contextmanager
def open_reads(config: Config) -> Iterator[HistoryReads]:
    """The store's history, read with ``sqlite3`` on a SQLite file at the current schema, else
    through the full store; closed on leaving."""
    # lazy: the store package loads only when the history is read, not for a remote daemon
    from scheduler.store.reads import open_history

    reads = open_history(config.database_url)
    try:
        yield reads
    finally:
        reads.close()


def local_daemon(config: Config) -> DaemonClient | None:
    """The daemon of ``config`` when it answers on its socket, else None."""
    # lazy: the HTTP client loads only for the commands that ask a running daemon
    from scheduler.services.client import local_daemon as _local

    return _local(config.state_dir)


def remote_daemon() -> RemoteClient | None:
    """The daemon named by ``--url`` (or ``$PIPESCHED_URL``), with ``$PIPESCHED_TOKEN``; None
    when no URL is given."""
    url = None
    ctx = click.get_current_context(silent=True)
    while ctx is not None and url is None:
        if isinstance(ctx.obj, dict):
            url = ctx.obj.get("url")
        ctx = ctx.parent
    url = url or os.environ.get(ENV_URL)
    if not url:
        return None
    token = os.environ.get(ENV_TOKEN)
    if not token:
        raise PipeschedError(
            f"--url needs an API token in ${ENV_TOKEN}",
            hint="create one on the daemon's machine with: pipesched token create NAME",
        )
    # lazy: the HTTP client loads only when a URL is given
    from scheduler.services.daemon_http import RemoteClient

    return RemoteClient(url, token)
