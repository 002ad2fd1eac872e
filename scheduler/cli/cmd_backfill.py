"""``pipesched backfill SCHEDULE --from A --to B``, ``backfill cancel ID`` and ``backfills``.

With a daemon answering (on its socket, or at ``--url``), the daemon makes and runs the
backfill; this command follows it (a progress bar on a terminal) until it ends, and Ctrl-C only
detaches. Without a daemon, it runs here in the foreground like ``pipesched run``, and Ctrl-C
cancels it. Exit 0 when every time completed (or was skipped), 1 otherwise.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import click

from scheduler.cli.options import (
    complete_schedule,
    config_option,
    json_option,
    load_config,
    no_headers_option,
    open_store,
    output_option,
    wants_json,
)
from scheduler.cli.reads import local_daemon, remote_daemon, url_option
from scheduler.cli.render import Column, console, is_tty, print_json, print_table
from scheduler.core.errors import PipeschedError

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.services.daemon_http import DaemonClient, RemoteClient
    from scheduler.store.backfills import Backfill

API = "/api/v1"
FOLLOW_EVERY = 0.5  # seconds between two reads of a backfill the daemon runs
STATUS_STYLES = {
    "running": "cyan",
    "completed": "green",
    "failed": "bold red",
    "canceled": "magenta",
}
COLUMNS = (
    Column("ID", priority=0),
    Column("SCHEDULE", priority=1, shrink="end", min_width=10),
    Column("RANGE", priority=2, min_width=23),
    Column("DONE", priority=0),
    Column("STATUS", priority=0, styles=STATUS_STYLES),
)


class _BackfillGroup(click.Group):
    """``backfill SCHEDULE ...`` and ``backfill cancel ID``: anything but ``cancel`` (or a
    help flag) first is the hidden ``start`` command's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_BackfillGroup)
def backfill() -> None:
    """Run each nominal time of a time schedule in a range once, in order.

    \b
    pipesched backfill SCHEDULE --from A --to B [--max-concurrent N] [--rerun] [--dry-run]
    pipesched backfill cancel ID

    \b
    A and B are dates (whole days) or ISO times, in the schedule's zone unless they carry an
    offset. Each run's trigger is backfill:ID. A time that already has a fire record (a live
    fire or an earlier backfill) is skipped unless --rerun. With a daemon, the daemon runs it
    (and carries on after a restart); without one, it runs here and Ctrl-C cancels it.

    \b
    Example:
      pipesched backfill nightly-scoring --from 2026-03-01 --to 2026-03-31 --max-concurrent 2
    """


@backfill.command(hidden=True)
@click.argument("schedule", shell_complete=complete_schedule)
@click.option("--from", "start", required=True, metavar="A", help="First day or time.")
@click.option("--to", "end", required=True, metavar="B", help="Last day or time (inclusive).")
@click.option(
    "--max-concurrent",
    type=click.IntRange(min=1, max=1000),
    default=1,
    show_default=True,
    help="Most runs of the backfill at once.",
)
@click.option("--rerun", is_flag=True, help="Run times that already have a fire record again.")
@click.option(
    "--dry-run", is_flag=True, help="List each time and what would happen; write nothing."
)
@json_option
@config_option
@url_option
def start(
    schedule: str,
    start: str,
    end: str,
    max_concurrent: int,
    rerun: bool,
    dry_run: bool,
    as_json: bool,
    config_path: str | None,
) -> None:
    """Backfill SCHEDULE over [A, B]."""
    body = {
        "from": start,
        "to": end,
        "max_concurrent": max_concurrent,
        "rerun": rerun,
        "dry_run": dry_run,
        "requested_by": _user(),
    }
    client = _daemon(config_path)
    if client is not None:
        answer = client.post(f"{API}/schedules/{quote(schedule, safe='')}/backfills", body)
        if dry_run:
            _print_plan(answer, as_json)
            return
        _follow(client, answer, as_json)
        return
    config = load_config(config_path)
    if dry_run:
        _print_plan(_local_plan(config_path, config, schedule, start, end, rerun), as_json)
        return
    _run_here(config_path, config, schedule, start, end, max_concurrent, rerun, as_json)


@backfill.command()
@click.argument("backfill_id", metavar="ID")
@json_option
@config_option
@url_option
def cancel(backfill_id: str, as_json: bool, config_path: str | None) -> None:
    """Cancel backfill ID: no new time starts, its queued and running runs are canceled."""
    client = _daemon(config_path)
    if client is not None:
        answer = client.post(f"{API}/backfills/{quote(backfill_id, safe='')}/cancel")
    else:
        answer = _cancel_without_daemon(load_config(config_path), backfill_id)
    if as_json:
        print_json(answer)
        return
    click.echo(f"backfill {answer['id']} {answer['status']}: {_done(answer)} times done")


@click.command()
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Most backfills to list; 0 lists all.",
)
@json_option
@output_option
@no_headers_option
@config_option
@url_option
def backfills(
    limit: int, as_json: bool, output: str | None, no_headers: bool, config_path: str | None
) -> None:
    """Backfills, newest first: schedule, range, progress, status.

    \b
    Example:
      pipesched backfills --limit 5
    """
    remote = remote_daemon()
    if remote is not None:
        found: list[dict[str, Any]] = remote.get(f"{API}/backfills?limit={limit}")
    else:
        config = load_config(config_path)
        with contextlib.closing(open_store(config)) as store:
            found = [b.to_json() for b in store.list_backfills(limit=limit)]
    if wants_json(as_json, output):
        print_json(found)
        return
    rows = [(b["id"], b["schedule"], _range(b), _done(b), b["status"]) for b in found]
    print_table(COLUMNS, rows, no_headers=no_headers, wide=output == "wide")


# -- with a daemon ----------------------------------------------------------------------------------


def _daemon(config_path: str | None) -> DaemonClient | RemoteClient | None:
    remote = remote_daemon()
    if remote is not None:
        return remote
    return local_daemon(load_config(config_path))


def _follow(client: DaemonClient | RemoteClient, created: dict[str, Any], as_json: bool) -> None:
    """Follow a backfill the daemon runs until it ends; Ctrl-C detaches."""
    backfill_id = created["id"]
    path = f"{API}/backfills/{backfill_id}"
    current = created
    try:
        with _progress(current) as show:
            while current["status"] == "running":
                time.sleep(FOLLOW_EVERY)
                current = client.get(path)
                show(current)
    except KeyboardInterrupt:
        click.echo(
            f"detached; backfill {backfill_id} goes on in the daemon. Follow it with "
            f"`pipesched backfills`, cancel it with `pipesched backfill cancel {backfill_id}`",
            err=True,
        )
        return
    current.pop("times", None)
    _report(current, as_json)


# -- without one ------------------------------------------------------------------------------------


def _schedule_set(config_path: str | None, store: Any) -> Any:
    # lazy: the definitions the daemon would serve load only to run or plan a backfill here
    from scheduler.cli.options import find_config_path
    from scheduler.daemon.schedule_set import load_schedule_set

    return load_schedule_set(find_config_path(config_path), strict=False, store=store)


def _local_plan(
    config_path: str | None, config: Config, name: str, start: str, end: str, rerun: bool
) -> dict[str, Any]:
    # lazy: the store and the service load only without a daemon
    from scheduler.core.clock import SYSTEM_CLOCK
    from scheduler.services.backfill_plan import find_schedule, parse_bound, plan_backfill

    with contextlib.closing(open_store(config)) as store:
        schedule = find_schedule(_schedule_set(config_path, store), name)
        first = parse_bound(start, schedule.zone, end=False)
        last = parse_bound(end, schedule.zone, end=True)
        plan = plan_backfill(store, schedule, first, last, rerun=rerun, now=SYSTEM_CLOCK.now())
        return plan.to_json()


def _run_here(
    config_path: str | None,
    config: Config,
    name: str,
    start: str,
    end: str,
    max_concurrent: int,
    rerun: bool,
    as_json: bool,
) -> None:
    # lazy: the store, the dispatcher and the executor load only to run a backfill here
    from scheduler.cli.run_compiled import keep_running_when_output_closes
    from scheduler.core.clock import SYSTEM_CLOCK
    from scheduler.core.logging import configure_logging
    from scheduler.core.procinfo import current_owner
    from scheduler.services.backfill import run_in_foreground
    from scheduler.services.backfill_plan import create_backfill, find_schedule, parse_bound

    keep_running_when_output_closes()  # before logging takes hold of stderr
    configure_logging(level="warning")
    with contextlib.closing(open_store(config)) as store:
        served = _schedule_set(config_path, store)
        schedule = find_schedule(served, name)
        made = create_backfill(
            store,
            schedule,
            parse_bound(start, schedule.zone, end=False),
            parse_bound(end, schedule.zone, end=True),
            max_concurrent=max_concurrent,
            rerun=rerun,
            requested_by=_user(),
            owner=current_owner(),
            now=SYSTEM_CLOCK.now(),
        )
        if not as_json:
            click.echo(
                f"backfill {made.id}: {made.total} times of {name}, here in the foreground "
                "(no daemon is running); Ctrl-C cancels it",
                err=True,
            )
        with _progress(made.to_json()) as show:
            final: Backfill = run_in_foreground(
                config, store, served, made, on_progress=lambda b: show(b.to_json())
            )
        _report(final.to_json(), as_json)


def _cancel_without_daemon(config: Config, reference: str) -> dict[str, Any]:
    """A foreground backfill still running is asked to cancel (SIGINT, as Ctrl-C would) and
    waited for; one whose owner is gone is recorded canceled here."""
    # lazy: the store loads only without a daemon
    from scheduler.core.procinfo import current_owner, is_alive
    from scheduler.services.backfill_plan import get_backfill

    with contextlib.closing(open_store(config)) as store:
        found = get_backfill(store, reference)
        owner = found.owner
        if found.finished:
            return found.to_json()
        if (
            owner is not None
            and owner.host == current_owner().host
            and is_alive(owner.pid, owner.start_ticks)
        ):
            os.kill(owner.pid, signal.SIGINT)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                current = store.get_backfill(found.id)
                if current.finished:
                    return current.to_json()
                time.sleep(0.2)
            raise PipeschedError(
                f"backfill {found.id} was asked to cancel (pid {owner.pid}) and has not ended yet"
            )
        return store.finish_backfill(found.id, "canceled", "canceled by user").to_json()


# -- output -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _progress(first: dict[str, Any]) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A progress bar on a terminal (stderr), nothing elsewhere; yields the update."""
    if not is_tty(sys.stderr):
        yield lambda _current: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn(f"backfill {first['id']} [{first['schedule']}]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        console=console(sys.stderr),
        transient=True,
    )
    task = bar.add_task("", total=first["total"], completed=first["done"], status=first["status"])

    def show(current: dict[str, Any]) -> None:
        bar.update(task, completed=current["done"], status=current["status"])

    with bar:
        yield show


def _report(final: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(final)
    else:
        counts = final.get("counts", {})
        detail = ", ".join(f"{n} {o}" for o, n in counts.items() if n)
        reason = f" ({final['reason']})" if final.get("reason") else ""
        click.echo(f"backfill {final['id']} {final['status']}{reason}: {detail}")
    if final["status"] != "completed":
        sys.exit(1)


def _print_plan(plan: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(plan)
        return
    zone = ZoneInfo(plan["timezone"])
    for item in plan["times"]:
        what = item["action"] + (f": {item['reason']}" if item["reason"] else "")
        local = datetime.fromisoformat(item["nominal_time"]).astimezone(zone)
        click.echo(f"{local.isoformat()}  {what}")
    click.echo(
        f"{plan['to_run']} of {plan['total']} times would run (dry run: nothing written)",
        err=True,
    )


def _range(data: dict[str, Any]) -> str:
    return f"{_short(data['from'])}..{_short(data['to'])}"


def _short(text: str) -> str:
    """``2026-03-01T00:00:00.000000+00:00`` as ``2026-03-01 00:00`` (UTC)."""
    moment = datetime.fromisoformat(text)
    return moment.strftime("%Y-%m-%d %H:%M")


def _done(data: dict[str, Any]) -> str:
    return f"{data['done']}/{data['total']}"


def _user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
