"""A small TCP proxy for tests: it stands between a client (a daemon) and a server (PostgreSQL)
so that a test can cut the network between them and heal it again.

Each connection has a thread of its own that forwards bytes both ways. ``cut("reset")`` ends
every open connection at once (both peers see the connection drop, as when a firewall answers
with resets) and resets each new one as soon as it is accepted. ``cut("blackhole")`` forwards
nothing more, in either direction, yet closes nothing: the peers see silence, as with a pulled
cable, and the server keeps the client's session until it notices by itself. New connections
are accepted and never forwarded. ``restore()`` lets new connections through again; the
connections stalled by a blackhole are reset then (their peers have given up on them).

``cut_in_transaction()`` arms a cut for the moment PostgreSQL tells a client, for the second
time in a row, that it is inside a transaction (a ReadyForQuery message with status ``T``: after
its BEGIN, then after its first statement): the client's next message (its COMMIT, say) never
arrives, and the server keeps that transaction open, with the locks its statement took. With
``statement``, only a transaction that sent a statement holding those bytes is cut.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.engine import make_url

CutMode = Literal["reset", "blackhole"]
#: How often a connection's thread looks whether the proxy was cut: the longest a cut waits.
POLL_SECONDS = 0.02
_LINGER_ZERO = struct.pack("ii", 1, 0)
# PostgreSQL's ReadyForQuery message ('Z', length 5): in a transaction block, or idle.
IN_TRANSACTION = b"Z\x00\x00\x00\x05T"
IDLE = b"Z\x00\x00\x00\x05I"


@dataclass(eq=False)
class _Link:
    """One client connection and, unless it was accepted during a blackhole, its upstream."""

    client: socket.socket
    upstream: socket.socket | None
    doomed: threading.Event = field(default_factory=threading.Event)  # to be reset
    in_transaction: int = 0  # ReadyForQuery "in a transaction" since the last "idle"
    sent_statement: bool = False  # the client sent the armed statement in this transaction
    closed: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        """Close both ends with a reset: a peer's next read or write fails at once. Only the
        link's own thread calls it (a socket closed under a select could be reused)."""
        if self.closed.is_set():
            return
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            sock.close()
        self.closed.set()


class TcpProxy:
    """Listens on 127.0.0.1 (a free port) and forwards each connection to ``target``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_SECONDS * 5)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._mode: CutMode | None = None
        self._armed: CutMode | None = None  # cut at the next ReadyForQuery in a transaction
        self._armed_statement: bytes | None = None
        self.cut_at: datetime | None = None  # when the last cut happened
        self._was_cut = threading.Event()
        self._stopping = threading.Event()
        self.accepted = 0  # connections accepted so far, for tests that count reconnections
        self._acceptor = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._acceptor.start()

    @classmethod
    def for_url(cls, database_url: str) -> TcpProxy:
        """A proxy in front of the server a SQLAlchemy URL names."""
        url = make_url(database_url)
        return cls(url.host or "127.0.0.1", url.port or 5432)

    def url(self, database_url: str) -> str:
        """``database_url`` going through this proxy."""
        proxied = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return proxied.render_as_string(hide_password=False)

    # -- faults --------------------------------------------------------------------------------

    @property
    def mode(self) -> CutMode | None:
        """How the proxy is cut now, or None while it forwards."""
        return self._mode

    def cut(self, mode: CutMode = "reset") -> None:
        """Cut the network: ``reset`` drops every connection and resets new ones, ``blackhole``
        keeps them all open and forwards nothing."""
        if mode not in ("reset", "blackhole"):
            raise ValueError(f"unknown cut mode {mode!r}: reset or blackhole")
        links = self._trip(mode)
        if mode == "reset":
            self._reset(links)

    def _trip(self, mode: CutMode) -> list[_Link]:
        """Be cut from now on; the links open at that moment."""
        with self._lock:
            self._mode = mode
            self._armed = None
            self.cut_at = datetime.now(UTC)
            links = list(self._links)
        self._was_cut.set()
        return links

    def cut_in_transaction(
        self, mode: CutMode = "blackhole", *, statement: bytes | None = None
    ) -> None:
        """Cut (as ``cut(mode)``) as soon as a client is inside a transaction after a statement
        of it; ``wait_cut`` says when that happened."""
        if mode not in ("reset", "blackhole"):
            raise ValueError(f"unknown cut mode {mode!r}: reset or blackhole")
        self._was_cut.clear()
        self._armed_statement = statement
        self._armed = mode

    def wait_cut(self, timeout: float) -> datetime:
        """When the armed cut happened; fails if it did not within ``timeout`` seconds."""
        if not self._was_cut.wait(timeout) or self.cut_at is None:
            raise AssertionError(f"no client was inside a transaction within {timeout}s")
        return self.cut_at

    def restore(self) -> None:
        """Forward again. Connections a blackhole stalled are reset: only new ones work."""
        with self._lock:
            stalled = list(self._links) if self._mode == "blackhole" else []
            self._mode = None
            self._armed = None
        self._reset(stalled)

    @staticmethod
    def _reset(links: list[_Link]) -> None:
        """Have each link's thread reset it, and wait until they all have."""
        for link in links:
            link.doomed.set()
        for link in links:
            link.closed.wait(timeout=5)

    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for link in self._links if not link.closed.is_set())

    def close(self) -> None:
        """Stop listening and reset every connection."""
        self._stopping.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            links = list(self._links)
        self._reset(links)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- forwarding ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            mode = self._mode
            if mode == "reset":
                _Link(client, None).reset()
                continue
            upstream = None
            if mode is None:
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    _Link(client, None).reset()
                    continue
            link = _Link(client, upstream)
            with self._lock:
                self._links.add(link)
            threading.Thread(
                target=self._forward, args=(link,), name="tcp-proxy-link", daemon=True
            ).start()

    def _forward(self, link: _Link) -> None:
        try:
            self._pump(link)
        finally:
            link.reset()
            with self._lock:
                self._links.discard(link)

    def _pump(self, link: _Link) -> None:
        """Forward both ways until either peer closes or the proxy resets the link; while it is
        blackholed, read nothing (the peers' bytes wait unacknowledged in their buffers)."""
        while not link.doomed.is_set() and not self._stopping.is_set():
            if self._mode == "reset":
                return
            if self._mode is not None or link.upstream is None:
                link.doomed.wait(POLL_SECONDS)
                continue
            peers = {link.client: link.upstream, link.upstream: link.client}
            try:
                readable, _, _ = select.select(list(peers), [], [], POLL_SECONDS)
            except OSError:
                return
            if self._mode is not None:
                continue  # cut between select and read: these bytes never arrive
            for source in readable:
                try:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
                except OSError:
                    return
                statement = self._armed_statement
                if source is not link.upstream:
                    if statement is not None and statement in data:
                        link.sent_statement = True
                    continue
                if IDLE in data:
                    link.in_transaction = 0
                    link.sent_statement = False
                link.in_transaction += data.count(IN_TRANSACTION)
                armed = self._armed
                ready = link.sent_statement if statement is not None else True
                if armed is not None and ready and link.in_transaction >= 2:
                    # Every link's thread sees the cut at its next look (this one at once).
                    self._trip(armed)
                    break
