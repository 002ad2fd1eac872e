"""The notify protocol against real unix datagram sockets, as systemd would receive it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.daemon.notify import Notifier, watchdog_loop
from tests.conftest import wait_until


class Receiver:
    """A bound SOCK_DGRAM socket standing in for systemd's notify socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(5)

    def recv(self) -> bytes:
        return self.sock.recv(4096)

    def pending(self) -> list[bytes]:
        """Every datagram already queued, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096))
        except BlockingIOError:
            return out
        finally:
            self.sock.settimeout(5)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[Receiver, str]]:
    path = str(tmp_path / "notify.sock")
    assert len(path) < 100, "AF_UNIX paths are limited to 108 bytes"
    rx = Receiver(path)
    yield rx, path
    rx.sock.close()


def test_ready_arrives_exactly(receiver: tuple[Receiver, str]) -> None:
    rx, path = receiver
    Notifier(path).ready()
    assert rx.recv() == b"READY=1"


def test_ready_with_status_is_one_message(receiver: tuple[Receiver, str]) -> None:
    rx, path = receiver
    Notifier(path).ready("3 schedules")
    assert rx.recv() == b"READY=1\nSTATUS=3 schedules"


def test_status_text_stays_on_one_line(receiver: tuple[Receiver, str]) -> None:
    rx, path = receiver
    Notifier(path).status("12 schedules;\nnext weekly-training in 4h 43min")
    assert rx.recv() == b"STATUS=12 schedules; next weekly-training in 4h 43min"


def test_watchdog_and_stopping_messages(receiver: tuple[Receiver, str]) -> None:
    rx, path = receiver
    notifier = Notifier(path)
    notifier.watchdog()
    notifier.stopping()
    assert [rx.recv(), rx.recv()] == [b"WATCHDOG=1", b"STOPPING=1"]


def test_reloading_carries_the_monotonic_time(receiver: tuple[Receiver, str]) -> None:
    rx, path = receiver
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    Notifier(path).reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = rx.recv().decode().split("\n")
    assert first == "RELOADING=1"
    name, value = second.split("=")
    assert name == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_abstract_socket_name() -> None:
    name = f"pipesched-test-{uuid.uuid4().hex}"
    rx = Receiver("\0" + name)
    try:
        Notifier.from_environ({"NOTIFY_SOCKET": "@" + name}).ready()
        assert rx.recv() == b"READY=1"
    finally:
        rx.sock.close()


def test_missing_socket_path_does_not_raise(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody-here.sock"))
    assert notifier.enabled
    notifier.ready()
    notifier.status("still fine")


def test_closed_receiver_does_not_raise(tmp_path: Path) -> None:
    path = str(tmp_path / "gone.sock")
    Receiver(path).sock.close()  # the file stays, nobody listens: ECONNREFUSED
    Notifier(path).watchdog()


def test_full_receiver_does_not_block(receiver: tuple[Receiver, str]) -> None:
    _, path = receiver  # never reads: its queue fills up
    notifier = Notifier(path)
    done = threading.Event()

    def flood() -> None:
        for _ in range(5000):
            notifier.status("x" * 200)
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(10), "a full notify socket blocked the sender"


def test_unset_socket_is_a_no_op() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    notifier.ready()
    notifier.reloading()
    assert notifier._sock is None


def test_unsupported_address_is_a_no_op() -> None:
    notifier = Notifier("vsock:2:1234")
    assert not notifier.enabled
    notifier.ready()


def test_unset_removes_the_variables_for_children() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1", "PATH": "/bin"}
    notifier = Notifier.from_environ(env, unset=True)
    assert env == {"PATH": "/bin"}
    assert notifier.enabled


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("200000", None, 0.1),
        (None, None, None),
        ("0", None, None),
        ("-5", None, None),
        ("soon", None, None),
        ("30000000", "self", 15.0),
        ("30000000", "other", None),
        ("30000000", "garbage", None),
    ],
)
def test_watchdog_interval(usec: str | None, pid: str | None, expected: float | None) -> None:
    pid_value = {"self": str(os.getpid()), "other": str(os.getpid() + 1)}.get(pid or "", pid)
    notifier = Notifier("/run/x", watchdog_usec=usec, watchdog_pid=pid_value)
    assert notifier.watchdog_interval() == expected


def test_watchdog_loop_pings_at_the_cadence(receiver: tuple[Receiver, str]) -> None:
    rx, path = receiver
    notifier = Notifier(path, watchdog_usec="200000")  # pings every 0.1 s
    pings: list[bytes] = []

    async def main() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(watchdog_loop(notifier, stop))
        started = time.monotonic()
        deadline = started + 5
        while len(pings) < 6 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            pings.extend(rx.pending())
        stop.set()
        await asyncio.wait_for(task, 1)
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    pings.extend(rx.pending())
    assert set(pings) == {b"WATCHDOG=1"}
    assert len(pings) >= 6, f"{len(pings)} pings in {elapsed:.2f}s"
    # Not a busy loop: at most one ping per interval (plus the one at start).
    assert len(pings) <= elapsed / 0.1 + 2


def test_watchdog_loop_stops_promptly(receiver: tuple[Receiver, str]) -> None:
    _, path = receiver
    notifier = Notifier(path, watchdog_usec="60000000")  # a 30 s interval

    async def main() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(watchdog_loop(notifier, stop))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        return time.monotonic() - started

    assert asyncio.run(main()) < 1


def test_watchdog_loop_returns_without_a_watchdog(receiver: tuple[Receiver, str]) -> None:
    rx, path = receiver

    async def main() -> None:
        await asyncio.wait_for(watchdog_loop(Notifier(path), asyncio.Event()), 1)

    asyncio.run(main())
    assert rx.pending() == []


def test_pings_arrive_from_a_real_process(receiver: tuple[Receiver, str]) -> None:
    """What systemd sees from a process started with NOTIFY_SOCKET and WATCHDOG_USEC set."""
    rx, path = receiver
    code = (
        "import asyncio\n"
        "from scheduler.daemon.notify import Notifier, watchdog_loop\n"
        "n = Notifier.from_environ(unset=True)\n"
        "n.ready('up')\n"
        "async def main():\n"
        "    stop = asyncio.Event()\n"
        "    asyncio.get_running_loop().call_later(0.5, stop.set)\n"
        "    await watchdog_loop(n, stop)\n"
        "asyncio.run(main())\n"
        "n.stopping()\n"
    )
    repo = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000", PYTHONPATH=repo)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    got: list[bytes] = []
    wait_until(lambda: got.extend(rx.pending()) or b"STOPPING=1" in got, timeout=20)
    assert proc.wait(10) == 0
    assert got[0] == b"READY=1\nSTATUS=up"
    assert got[-1] == b"STOPPING=1"
    assert got.count(b"WATCHDOG=1") >= 3
