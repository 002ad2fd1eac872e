"""``pipesched status``: the daemon of this machine's config (asked on its socket: pid, up since,
role, schedules, runs in flight, the store's state, its last reload), the store it uses, and on
PostgreSQL the daemons that share it: the leader, the epoch, each daemon's heartbeat (read from
the store, so a leader on another machine shows too).

On SQLite it imports only the standard library and the lean config reader: it reads nothing
but the daemon's ``/healthz``. Exit 3 when no daemon runs, as ``systemctl status`` does.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

import click

from scheduler.cli.options import config_option, json_option
from scheduler.cli.reads import read_config, remote_daemon, url_option
from scheduler.cli.render import (
    Column,
    ellipsis_for,
    format_moment,
    format_when,
    is_tty,
    print_table,
    shorten,
    terminal_width,
)
from scheduler.core.clock import iso
from scheduler.core.errors import PipeschedError
from scheduler.services.daemon_http import (
    DaemonClient,
    DaemonNotRunning,
    DaemonUnreachable,
    RemoteClient,
    socket_path,
)

if TYPE_CHECKING:
    from scheduler.definitions.config import Config

EXIT_NOT_RUNNING = 3  # as systemctl status: the unit is not active
EXIT_NOT_ANSWERING = 1
HEALTH_TIMEOUT = 5.0  # a daemon that answers nothing within this is reported as not answering


@click.command()
@config_option
@url_option
@json_option
def status(config_path: str | None, as_json: bool) -> None:
    """The daemon, its store and, on PostgreSQL, the daemons sharing the store.

    \b
    Shows the daemon's pid, when it started, its role (single, leader or
    standby), schedules served, runs in flight, whether its store can be
    written and its last reload; the store's URL (password hidden); on
    PostgreSQL the leader, the epoch and every daemon's last heartbeat.
    With --url only the daemon at URL is shown (store and leadership are
    read on the daemon's machine).

    \b
    Exit status:
      0  the daemon runs
      1  the config cannot be read, or the daemon does not answer
      3  no daemon runs (as systemctl status), or none answers at --url
    """
    remote = remote_daemon()
    report = gather_remote(remote) if remote is not None else gather(read_config(config_path))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_status(report, datetime.now(UTC))
    if report.daemon is None:
        sys.exit(EXIT_NOT_RUNNING)
    if report.daemon.get("error"):
        sys.exit(EXIT_NOT_ANSWERING)


# -- what is read ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """What ``status`` found: the daemon's health (None: no daemon runs), the store, and the
    daemons sharing a PostgreSQL store (None on SQLite)."""

    daemon: dict[str, Any] | None
    store: dict[str, Any] | None  # None: a remote daemon's, not read from here
    ha: dict[str, Any] | None
    remote: str | None = None  # the URL asked instead of this machine's daemon

    def to_json(self) -> dict[str, Any]:
        return {"daemon": self.daemon, "store": self.store, "ha": self.ha}


def gather(config: Config) -> Status:
    kind = store_kind(config.database_url)
    store: dict[str, Any] = {"url": config.database_shown, "kind": kind}
    ha = None
    if kind == "postgresql":
        try:
            ha = read_leadership(config.database_url)
        except StoreUnreadable as exc:
            store["error"] = str(exc)
    return Status(daemon_health(config), store, ha)


def gather_remote(remote: RemoteClient) -> Status:
    """The daemon at a URL: its health only."""
    remote.timeout = HEALTH_TIMEOUT
    try:
        health = remote.get("/healthz")
    except DaemonUnreachable:
        return Status(None, None, None, remote.origin)
    except PipeschedError as exc:
        return Status({"running": True, "error": str(exc)}, None, None, remote.origin)
    answer = health_fields(health if isinstance(health, dict) else {})
    return Status(answer, None, None, remote.origin)


def daemon_health(config: Config) -> dict[str, Any] | None:
    """The daemon's ``/healthz`` in the shape of ``status --json``; None when none runs."""
    client = DaemonClient(socket_path(config.state_dir), timeout=HEALTH_TIMEOUT)
    try:
        health = client.health()
    except DaemonNotRunning:
        return None
    except PipeschedError as exc:
        return {"running": True, "error": str(exc)}
    return health_fields(health)


def health_fields(health: dict[str, Any]) -> dict[str, Any]:
    """A daemon's ``/healthz`` answer in the shape of ``status --json``."""
    answer: dict[str, Any] = {
        "running": True,
        "pid": health.get("pid"),
        "started_at": health.get("started_at"),
        "role": health.get("role", "single"),
        "epoch": health.get("epoch"),
        "schedules": health.get("schedules"),
        "runs_in_flight": health.get("runs_in_flight"),
        "store_status": health.get("status"),
    }
    if health.get("reason"):
        answer["store_reason"] = health["reason"]
    answer["last_reload"] = health.get("last_reload")
    if health.get("role") == "standby":
        answer["leader"] = health.get("leader")
    return answer


class StoreUnreadable(PipeschedError):
    """The store could not be read (its server down, a schema this version does not know)."""


def read_leadership(url: str) -> dict[str, Any]:
    """The leader, the epoch and every daemon's last heartbeat, as the database says now."""
    # lazy: SQLAlchemy only for a PostgreSQL store, where daemons may share it
    from sqlalchemy.exc import SQLAlchemyError

    # lazy: as above
    from scheduler.store.store import Store

    try:
        store = Store.open(url)
        try:
            leadership = store.leadership()
            beats = store.daemon_beats()
        finally:
            store.close()
    except (SQLAlchemyError, PipeschedError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreUnreadable(reason) from exc
    now = leadership.server_now
    leader = None
    if leadership.holder is not None:
        leader = {
            "name": leadership.holder,
            "host": leadership.host,
            "pid": leadership.pid,
            "since": iso(leadership.since),
            "api_url": leadership.api_url,
            "epoch": leadership.epoch,
            "lease_until": iso(leadership.lease_until),
            "lease_lapsed": leadership.lease_lapsed,
        }
    return {
        "epoch": leadership.epoch,
        "leader": leader,
        "daemons": [beat.to_json(now) for beat in beats],
        "server_now": iso(now),
    }


def store_kind(url: str) -> str:
    """``sqlite`` or ``postgresql`` (the dialect, without its driver)."""
    return urlsplit(url).scheme.split("+", 1)[0]


# -- how it is shown ---------------------------------------------------------------------------


def print_status(report: Status, now: datetime, out: TextIO | None = None) -> None:
    """``kubectl describe``-like: one ``Label:  value`` per line, nested by indentation, then
    the daemons sharing the store as a table."""
    out = out if out is not None else sys.stdout
    lines: list[tuple[int, str, str]] = []
    lines.extend(_daemon_lines(report.daemon, now, report.remote))
    store = report.store
    if store is not None:
        lines.append((0, "Store", f"{store['url']}"))
        if store.get("error"):
            lines.append((1, "Unreadable", store["error"]))
    ha = report.ha
    if ha is not None:
        lines.extend(_leadership_lines(ha, now))
    _print_fields(lines, out)
    if ha is not None and ha["daemons"]:
        out.write("Daemons:\n")
        _print_daemons(ha["daemons"], now, out)


def _daemon_lines(
    daemon: dict[str, Any] | None, now: datetime, remote: str | None
) -> list[tuple[int, str, str]]:
    at = f" at {remote}" if remote else ""
    if daemon is None:
        if remote:
            return [(0, "Daemon", f"no answer{at}")]
        return [(0, "Daemon", "not running (start it with: pipesched daemon)")]
    if daemon.get("error"):
        return [(0, "Daemon", f"not answering{at}: {daemon['error']}")]
    role = daemon.get("role") or "single"
    epoch = daemon.get("epoch")
    role_words = role if epoch is None else f"{role}, epoch {epoch}"
    lines = [
        (0, "Daemon", f"running{at} ({role_words})"),
        (1, "PID", str(daemon.get("pid"))),
        (1, "Up since", format_moment(_moment(daemon.get("started_at")), now)),
    ]
    if role == "standby":
        leader = daemon.get("leader")
        lines.append((1, "Leader", _leader_words(leader, now) if leader else "none"))
    else:
        lines.append((1, "Schedules", str(daemon.get("schedules"))))
        lines.append((1, "Runs in flight", str(daemon.get("runs_in_flight"))))
    store_status = daemon.get("store_status") or "ok"
    if daemon.get("store_reason"):
        store_status = f"{store_status}: {daemon['store_reason']}"
    lines.append((1, "Store state", store_status))
    if role != "standby":
        lines.append((1, "Last reload", _reload_words(daemon.get("last_reload"), now)))
    return lines


def _reload_words(reload: dict[str, Any] | None, now: datetime) -> str:
    if reload is None:
        return "none since start"
    when = format_moment(_moment(reload.get("at")), now)
    if reload.get("reloaded"):
        return f"{when}, done"
    errors = reload.get("errors") or 0
    return f"{when}, refused ({errors} error{'' if errors == 1 else 's'})"


def _leader_words(leader: dict[str, Any], now: datetime) -> str:
    words = f"{leader.get('host')}:{leader.get('pid')}"
    since = _moment(leader.get("since"))
    if since is not None:
        words += f", since {format_when(since, now)}"
    if leader.get("api_url"):
        words += f", {leader['api_url']}"
    return words


def _leadership_lines(ha: dict[str, Any], now: datetime) -> list[tuple[int, str, str]]:
    leader = ha.get("leader")
    server_now = _moment(ha.get("server_now")) or now
    lines = [(0, "Leadership", ""), (1, "Epoch", str(ha["epoch"]))]
    if leader is None:
        lines.append((1, "Leader", "none (no daemon has run with ha.mode standby)"))
        return lines
    lines.append((1, "Leader", _leader_words(leader, now)))
    lease = _moment(leader.get("lease_until"))
    lapsed = " (lapsed)" if leader.get("lease_lapsed") else ""
    lines.append((1, "Lease until", f"{format_when(lease, server_now)}{lapsed}"))
    return lines


def _print_fields(lines: list[tuple[int, str, str]], out: TextIO) -> None:
    """Labels at their depth, every value in one column; on a terminal a value too long for
    its width is shortened in its middle (a URL keeps its host and its database)."""
    column = max(2 * depth + len(label) + 1 for depth, label, _ in lines) + 2
    room = terminal_width(out) - column if is_tty(out) else None
    mark = ellipsis_for(out)
    for depth, label, value in lines:
        head = f"{'  ' * depth}{label}:"
        if not value:
            out.write(head + "\n")
            continue
        if room is not None:
            value = shorten(value, max(room, 12), where="middle", mark=mark)
        out.write(head.ljust(column) + value + "\n")
    out.flush()


def _print_daemons(daemons: list[dict[str, Any]], now: datetime, out: TextIO) -> None:
    rows = []
    for beat in daemons:
        age = float(beat.get("age_seconds") or 0.0)
        heartbeat = "now" if age < 1 else f"{age:.0f}s ago"
        if age >= float(beat.get("lease_seconds") or 0.0):
            heartbeat += " (lapsed)"
        rows.append(
            [
                beat.get("host"),
                beat.get("pid"),
                beat.get("role"),
                beat.get("epoch"),
                heartbeat,
                format_when(_moment(beat.get("started_at")), now),
                beat.get("version"),
                beat.get("api_url") or "-",
            ]
        )
    headers = [
        Column("HOST", priority=0, shrink="end", min_width=12),
        Column("PID", priority=0),
        Column("ROLE", priority=0),
        Column("EPOCH", priority=3),
        Column("HEARTBEAT", priority=0),
        Column("STARTED", priority=4),
        Column("VERSION", priority=5),
        Column("API", priority=6, shrink="middle", min_width=16),
    ]
    print_table(headers, rows, out=out, indent=2)


def _moment(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
