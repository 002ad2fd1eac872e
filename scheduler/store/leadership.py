"""Leadership among the daemons of one PostgreSQL store: the epoch each takeover raises, the
leader's lease (renewed on the database's clock, so hosts' clocks never matter), and every
daemon's heartbeat.

The epoch is the fence. A daemon that leads sets it on its store's sessions
(``Sessions.lead``), and each of its write transactions then first reads the leadership row
``FOR SHARE`` and refuses to go on unless the epoch is still its own. A takeover's ``UPDATE``
waits for the writes in flight and bars every later one: a write from an old leader is
refused by the database, whatever that leader believes.
"""

from __future__ import annotations

from datetime import UTC, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from scheduler.store.models import DaemonHeartbeatRow, LeadershipRow
from scheduler.store.records import DaemonBeat, Leadership
from scheduler.store.sessions import Sessions, rowcount

LEADERSHIP_ROW = 1


class LeadershipRepository:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def leadership(self) -> Leadership:
        """The leadership row and the database's clock, in one read."""
        with self._sessions.read() as session:
            row = session.get(LeadershipRow, LEADERSHIP_ROW)
            now = session.scalar(select(func.now()))
            assert now is not None
            server_now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
            if row is None:  # a database from before the table: nobody ever led
                return Leadership(0, None, None, None, None, None, None, server_now)
            return Leadership(
                row.epoch,
                row.holder,
                row.host,
                row.pid,
                row.since,
                row.api_url,
                row.lease_until,
                server_now,
            )

    def take_leadership(
        self,
        *,
        seen_epoch: int,
        holder: str,
        host: str,
        pid: int,
        api_url: str | None,
        lease: float,
    ) -> int | None:
        """Raise the epoch from ``seen_epoch`` and name ``holder`` leader with a fresh lease;
        None when another daemon raised it first. Not behind the epoch fence: it moves it."""
        now = func.now()
        with self._sessions.unfenced_write() as session:
            if session.get_bind().dialect.name == "postgresql":
                # A replaced leader stopped inside a write holds the row until the server ends
                # its session: give up and try again rather than wait behind it unseen.
                session.execute(text(f"SET LOCAL lock_timeout = {int(lease * 1000)}"))
            result = session.execute(
                update(LeadershipRow)
                .where(LeadershipRow.id == LEADERSHIP_ROW, LeadershipRow.epoch == seen_epoch)
                .values(
                    epoch=LeadershipRow.epoch + 1,
                    holder=holder,
                    host=host,
                    pid=pid,
                    since=now,
                    api_url=api_url,
                    lease_until=now + timedelta(seconds=lease),
                )
            )
            return seen_epoch + 1 if rowcount(result) == 1 else None

    def renew_lease(self, epoch: int, lease: float, api_url: str | None = None) -> bool:
        """Extend the leader's lease from the database's now (and say where its API listens,
        once it does); False when ``epoch`` is over."""
        values: dict[str, object] = {"lease_until": func.now() + timedelta(seconds=lease)}
        if api_url is not None:
            values["api_url"] = api_url
        with self._sessions.unfenced_write() as session:
            result = session.execute(
                update(LeadershipRow)
                .where(LeadershipRow.id == LEADERSHIP_ROW, LeadershipRow.epoch == epoch)
                .values(**values)
            )
            return rowcount(result) == 1

    def beat(self, beat: DaemonBeat) -> None:
        """Write this daemon's heartbeat (``heartbeat_at`` is the database's now)."""
        values = {
            "name": beat.name,
            "host": beat.host,
            "pid": beat.pid,
            "started_at": beat.started_at,
            "role": beat.role,
            "epoch": beat.epoch,
            "heartbeat_at": func.now(),
            "lease_seconds": beat.lease_seconds,
            "schema_revision": beat.schema_revision,
            "version": beat.version,
            "api_url": beat.api_url,
        }
        dialect = self._sessions.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(DaemonHeartbeatRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[DaemonHeartbeatRow.name],
            set_={k: statement.excluded[k] for k in values if k != "name"},
        )
        with self._sessions.unfenced_write() as session:
            session.execute(statement)

    def daemon_beats(self) -> list[DaemonBeat]:
        """Every daemon's last heartbeat, the leader's first, then by name."""
        with self._sessions.read() as session:
            rows = session.scalars(select(DaemonHeartbeatRow)).all()
            beats = [
                DaemonBeat(
                    r.name,
                    r.host,
                    r.pid,
                    r.started_at,
                    r.role,
                    r.epoch,
                    r.heartbeat_at,
                    r.lease_seconds,
                    r.schema_revision,
                    r.version,
                    r.api_url,
                )
                for r in rows
            ]
        return sorted(beats, key=lambda b: (b.role != "leader", b.name))

    def forget_daemons(self, *, silent_for: float | None = None, name: str | None = None) -> int:
        """Drop heartbeats: one daemon's (a clean stop), or those of every daemon silent for
        more than ``silent_for`` seconds on the database's clock (gone without a goodbye)."""
        statement = delete(DaemonHeartbeatRow)
        if name is not None:
            statement = statement.where(DaemonHeartbeatRow.name == name)
        if silent_for is not None:
            cutoff = func.now() - timedelta(seconds=silent_for)
            statement = statement.where(DaemonHeartbeatRow.heartbeat_at < cutoff)
        with self._sessions.unfenced_write() as session:
            return rowcount(session.execute(statement))
