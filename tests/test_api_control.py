"""The daemon's control API as the CLI reaches it: the real FastAPI app served by uvicorn in an
event loop on a real unix socket, asked by the real stdlib client, reading a real SQLite store.

``FakeDaemon`` stands in for the daemon's internals behind the ``DaemonControl`` protocol (the
daemon is tested on its own); it fakes nothing these tests check.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from scheduler.api.control import DaemonControl, create_control_app
from scheduler.api.server import SocketInUse, serve_unix
from scheduler.core.errors import NotFound, PipeschedError
from scheduler.services.daemon_http import DaemonClient, DaemonNotRunning
from scheduler.store import Store

T = TypeVar("T")
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeDaemon:
    """Answers like the daemon and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.schedules = {"nightly": True}

    def health(self) -> dict:
        return {
            "status": "ok",
            "pid": os.getpid(),
            "schedules": len(self.schedules),
            "runs_in_flight": 0,
            "started_at": "2026-11-25T12:00:00.000000+00:00",
        }

    async def cancel_run(self, run_id: str) -> dict:
        self.calls.append(("cancel", run_id))
        if run_id == "finished":
            raise PipeschedError("run finished has already finished: completed")
        if run_id != "r1":
            raise NotFound(f"no run {run_id!r}")
        await asyncio.sleep(0)  # a real await in the loop, as the daemon's would be
        return {"id": run_id, "status": "canceled", "status_reason": "canceled by user"}

    async def set_schedule_enabled(self, name: str, enabled: bool) -> dict:
        self.calls.append(("enabled", (name, enabled)))
        if name not in self.schedules:
            raise NotFound(f"no schedule {name!r}")
        self.schedules[name] = enabled
        return {"name": name, "enabled": enabled, "override": enabled}

    async def trigger_schedule(self, name: str) -> dict:
        self.calls.append(("trigger", name))
        if name not in self.schedules:
            raise NotFound(f"no schedule {name!r}")
        return {"run_id": "r2", "outcome": "started", "reason": None}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path}/pipesched.db") as opened:
        yield opened


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon()


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "var" / "pipesched.sock"


@pytest.fixture
def served(
    daemon: FakeDaemon, store: Store, sock: Path
) -> Callable[[Callable[[DaemonClient], T]], T]:
    """Serve the app in a fresh event loop while ``use(client)`` runs in a worker thread."""

    def run(use: Callable[[DaemonClient], T]) -> T:
        return asyncio.run(_serving(create_control_app(daemon, store), sock, use))

    return run


async def _serving(app: Any, sock: Path, use: Callable[[DaemonClient], T]) -> T:
    server = await serve_unix(app, sock)
    try:
        return await asyncio.to_thread(use, DaemonClient(sock))
    finally:
        await server.stop()


def test_fake_daemon_fits_the_protocol():
    control: DaemonControl = FakeDaemon()  # the type checker holds this line to the protocol
    assert callable(control.health)


def test_healthz_answers_with_the_daemons_health(served):
    assert served(lambda c: c.available() and c.health()) == FakeDaemon().health()


def test_cancel_hands_the_run_to_the_daemon(served, daemon: FakeDaemon):
    answer = served(lambda c: c.post("/api/v1/runs/r1/cancel"))
    assert answer["status"] == "canceled"
    assert daemon.calls == [("cancel", "r1")]


def test_not_found_is_404_with_the_daemons_message(served):
    def ask(client: DaemonClient) -> str:
        with pytest.raises(NotFound) as caught:
            client.post("/api/v1/runs/nope/cancel")
        return str(caught.value)

    assert served(ask) == "no run 'nope'"


def test_a_refused_request_is_409_with_the_daemons_message(served, sock: Path):
    def ask(client: DaemonClient) -> tuple[int, bytes]:
        with pytest.raises(PipeschedError) as caught:
            client.post("/api/v1/runs/finished/cancel")
        assert not isinstance(caught.value, NotFound)
        assert str(caught.value) == "run finished has already finished: completed"
        return _raw_status(sock, "POST", "/api/v1/runs/finished/cancel")

    status, body = served(ask)
    assert status == 409 and body == b'{"detail":"run finished has already finished: completed"}'


@pytest.mark.parametrize(("action", "enabled"), [("enable", True), ("disable", False)])
def test_enable_and_disable_reach_the_daemon(served, daemon: FakeDaemon, action, enabled):
    answer = served(lambda c: c.post(f"/api/v1/schedules/nightly/{action}"))
    assert answer == {"name": "nightly", "enabled": enabled, "override": enabled}
    assert daemon.calls == [("enabled", ("nightly", enabled))]


def test_trigger_returns_what_the_fire_became(served, daemon: FakeDaemon):
    answer = served(lambda c: c.post("/api/v1/schedules/nightly/trigger"))
    assert answer == {"run_id": "r2", "outcome": "started", "reason": None}
    assert daemon.calls == [("trigger", "nightly")]


def test_fires_are_read_from_the_store_newest_first(served, store: Store):
    store.register_schedules({"nightly": "file"})
    for hours in range(3):
        store.claim_fire("nightly", NOON + timedelta(hours=hours), outcome="started")
    store.claim_fire("other", NOON, outcome="missed", reason="catch-up rule")
    fires = served(lambda c: c.get("/api/v1/schedules/nightly/fires?limit=2"))
    assert fires == [
        {
            "schedule": "nightly",
            "nominal_time": "2026-11-25T14:00:00.000000+00:00",
            "path": None,
            "outcome": "started",
            "reason": None,
            "run_id": None,
        },
        {
            "schedule": "nightly",
            "nominal_time": "2026-11-25T13:00:00.000000+00:00",
            "path": None,
            "outcome": "started",
            "reason": None,
            "run_id": None,
        },
    ]


def test_fires_of_an_unknown_schedule_is_404(served):
    def ask(client: DaemonClient) -> None:
        with pytest.raises(NotFound, match="no schedule 'ghost'"):
            client.get("/api/v1/schedules/ghost/fires")

    served(ask)


def test_a_negative_limit_is_refused_naming_the_field(served, store: Store):
    store.register_schedules({"nightly": "file"})

    def ask(client: DaemonClient) -> None:
        with pytest.raises(PipeschedError, match="limit"):
            client.get("/api/v1/schedules/nightly/fires?limit=-1")

    served(ask)


def test_the_socket_is_private_to_its_user(served, sock: Path):
    mode = served(lambda c: stat.S_IMODE(os.stat(sock).st_mode))
    assert mode == 0o600


def test_stop_removes_the_socket_and_the_client_sees_no_daemon(served, sock: Path):
    served(lambda c: None)
    assert not sock.exists()
    client = DaemonClient(sock)
    assert client.available() is False
    with pytest.raises(DaemonNotRunning, match=r"start it with: pipesched daemon"):
        client.post("/api/v1/runs/r1/cancel")


def test_a_stale_socket_file_is_replaced(served, sock: Path):
    sock.parent.mkdir(parents=True)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock))  # bound, never listening, closed: what a kill -9 leaves behind
    dead.close()
    assert DaemonClient(sock).available() is False
    assert served(lambda c: c.available()) is True


def test_a_socket_another_process_answers_on_is_refused(daemon, store: Store, sock: Path):
    sock.parent.mkdir(parents=True)
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(sock))
    live.listen(1)
    try:
        with pytest.raises(SocketInUse, match="another process answers"):
            asyncio.run(serve_unix(create_control_app(daemon, store), sock))
        assert sock.exists()  # the other one's socket is left alone
    finally:
        live.close()


def test_a_file_that_is_not_a_socket_is_left_alone(daemon, store: Store, sock: Path):
    sock.parent.mkdir(parents=True)
    sock.write_text("not mine")
    with pytest.raises(PipeschedError, match="is not a socket"):
        asyncio.run(serve_unix(create_control_app(daemon, store), sock))
    assert sock.read_text() == "not mine"


def test_serving_leaves_the_signal_handlers_alone(served):
    def handler(signum: int, frame: object) -> None:
        raise AssertionError("not expected to run")

    signals = (signal.SIGINT, signal.SIGTERM)
    before = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        during = served(lambda c: [signal.getsignal(sig) for sig in signals])
        after = [signal.getsignal(sig) for sig in signals]
        assert during == [handler, handler] and after == [handler, handler]
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def test_the_loop_keeps_running_while_a_request_is_served(daemon, store: Store, sock: Path):
    """serve_unix returns once listening, and requests are answered by the same loop that runs
    the daemon's other tasks."""

    async def scenario() -> int:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.001)

        tick_task = asyncio.create_task(ticker())
        server = await serve_unix(create_control_app(daemon, store), sock)
        try:
            before = ticks
            await asyncio.to_thread(lambda: [DaemonClient(sock).health() for _ in range(5)])
            return ticks - before
        finally:
            await server.stop()
            stop.set()
            await tick_task

    assert asyncio.run(scenario()) > 0


def _raw_status(sock: Path, method: str, path: str) -> tuple[int, bytes]:
    """One raw HTTP/1.1 exchange, to see the exact status line and body on the wire."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
        raw.settimeout(5)
        raw.connect(str(sock))
        raw.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := raw.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
