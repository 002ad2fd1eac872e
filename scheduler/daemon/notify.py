"""systemd's notify protocol (sd_notify(3)): READY=1, STATUS=, WATCHDOG=1, STOPPING=1, RELOADING=1.

Hand-written on the standard library rather than a library: `sdnotify` on PyPI has been unmaintained
since 2017 (no abstract sockets, no MONOTONIC_USEC), and systemd's own Python bindings
(`systemd-python`) compile against libsystemd headers, which a plain `pip install` on a machine
without them cannot do. The protocol itself is one datagram per message on a unix socket.

Every send is best effort (a send that fails is ignored): a missing, dead or full socket
is logged at debug and never raised, so systemd being away never takes the daemon down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import MutableMapping

import structlog

log = structlog.get_logger("scheduler.daemon.notify")

# What the service manager hands us; the daemon may drop them from its environment so that step
# processes do not inherit them (sd_notify's `unset_environment`).
NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _address(value: str) -> str | None:
    """The socket address for a $NOTIFY_SOCKET value, or None when we cannot speak to it."""
    if value.startswith("@"):
        return "\0" + value[1:]  # an abstract-namespace socket
    if value.startswith("/"):
        return value
    return None  # e.g. systemd 253's "vsock:CID:PORT" (VMs): not ours to support yet


class Notifier:
    """Talks to the service manager named by $NOTIFY_SOCKET; a no-op when it is unset."""

    def __init__(
        self,
        notify_socket: str | None = None,
        *,
        watchdog_usec: str | None = None,
        watchdog_pid: str | None = None,
    ) -> None:
        self._address = _address(notify_socket) if notify_socket else None
        if notify_socket and self._address is None:
            log.debug("notify_socket_unsupported", notify_socket=notify_socket)
        self._watchdog_usec = watchdog_usec
        self._watchdog_pid = watchdog_pid
        self._sock: socket.socket | None = None

    @classmethod
    def from_environ(
        cls, environ: MutableMapping[str, str] | None = None, *, unset: bool = False
    ) -> Notifier:
        """A notifier for this process's service manager.

        ``unset=True`` removes the variables from ``environ`` (default ``os.environ``) once read,
        so that step processes started later neither ping our watchdog nor notify in our name.
        """
        env = os.environ if environ is None else environ
        notifier = cls(
            env.get("NOTIFY_SOCKET"),
            watchdog_usec=env.get("WATCHDOG_USEC"),
            watchdog_pid=env.get("WATCHDOG_PID"),
        )
        if unset:
            for name in NOTIFY_VARIABLES:
                env.pop(name, None)
        return notifier

    @property
    def enabled(self) -> bool:
        """True when a service manager listens (messages are sent at all)."""
        return self._address is not None

    def notify(self, *fields: str) -> None:
        """Send one message made of ``KEY=VALUE`` fields; failures are logged at debug only."""
        if self._address is None or not fields:
            return
        data = "\n".join(fields).encode()
        try:
            if self._sock is None:
                # Non-blocking: a receiver that does not read must not stall the event loop;
                # a full queue is one more failed best-effort send.
                self._sock = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._sock.sendto(data, self._address)
        except OSError as exc:
            log.debug("notify_failed", message=data.decode(errors="replace"), error=str(exc))

    def ready(self, status: str | None = None) -> None:
        """Start-up (or a reload) is complete; with ``status``, the STATUS= line in the same message."""
        self.notify("READY=1", *([_status(status)] if status is not None else []))

    def status(self, text: str) -> None:
        """The one-line status `systemctl status` shows."""
        self.notify(_status(text))

    def watchdog(self) -> None:
        """Keep-alive ping; systemd kills the service when they stop for WatchdogSec."""
        self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> None:
        """Shutdown has begun (sent on SIGTERM, before the grace period)."""
        self.notify("STOPPING=1", *([_status(status)] if status is not None else []))

    def reloading(self, status: str | None = None) -> None:
        """A reload has begun; send ``ready()`` when it is done, whether it succeeded or not.

        MONOTONIC_USEC lets systemd ≥ 253 match the message to the reload it asked for
        (``Type=notify-reload`` fails a reload without it); older versions ignore the field.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        extra = [_status(status)] if status is not None else []
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *extra)

    def extend_timeout(self, seconds: float) -> None:
        """Ask for ``seconds`` more before a start/stop timeout hits (e.g. a long migration)."""
        self.notify(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}")

    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises), or
        None when no watchdog is asked of this process."""
        try:
            usec = int(self._watchdog_usec or "")
        except ValueError:
            return None
        if usec <= 0:
            return None
        if self._watchdog_pid:
            try:
                if int(self._watchdog_pid) != os.getpid():
                    return None  # the watchdog is meant for another process (e.g. our parent)
            except ValueError:
                return None
        return usec / 2 / 1_000_000

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _status(text: str) -> str:
    # One message field per line: a newline inside the text would start a bogus field.
    return "STATUS=" + " ".join(text.splitlines())


async def watchdog_loop(notifier: Notifier, stop_event: asyncio.Event) -> None:
    """Ping the watchdog every interval until ``stop_event`` is set; returns at once without one.

    It runs on the daemon's event loop on purpose (not a thread): a loop that is stuck stops the
    pings, and systemd then restarts the daemon — which is what the watchdog is for.
    """
    interval = notifier.watchdog_interval()
    if interval is None:
        return
    while not stop_event.is_set():
        notifier.watchdog()
        with contextlib.suppress(TimeoutError):  # the interval passed: ping again
            await asyncio.wait_for(stop_event.wait(), timeout=interval)
