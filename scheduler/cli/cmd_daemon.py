"""``pipesched daemon``: run the daemon in the foreground (what systemd starts)."""

from __future__ import annotations

import asyncio
import sys

import click

from scheduler.cli.options import config_option, find_config_path
from scheduler.daemon.lifecycle import Daemon


@click.command()
@config_option
@click.option(
    "--standby",
    is_flag=True,
    help="Wait as a standby while another daemon leads this PostgreSQL store, and take over "
    "when it goes (as ha.mode: standby in the config).",
)
def daemon(config_path: str | None, standby: bool) -> None:
    """Run the scheduler daemon in the foreground until SIGTERM or Ctrl-C.

    It fires the schedules of schedules.yaml, records every run, reloads its definitions on
    SIGHUP (a bad file leaves the old set serving), and answers `pipesched cancel` and
    `pipesched schedule ...` on <state_dir>/pipesched.sock. Under systemd it speaks the notify
    protocol (READY=1, STATUS=, WATCHDOG=1). Logs go to stderr: JSON lines off a terminal.
    """
    sys.exit(asyncio.run(Daemon(find_config_path(config_path), standby=standby).run()))
