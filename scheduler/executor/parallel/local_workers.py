"""A worker process of a local parallel_run pool: started on the step's interpreter or forked from
the driver (``can_fork``), with the driver's ends of its pipes, killed and reaped."""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import sys
import traceback
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from scheduler.executor.parallel import worker as worker_module
from scheduler.executor.parallel.pools import Outcome
from scheduler.executor.parallel.spec import ParallelSpec

WORKER_SCRIPT = os.path.abspath(worker_module.__file__)


def can_fork(interpreter: str) -> bool:
    """Fork workers only when they would run on this very interpreter (same path, so the same
    environment and site-packages) and the platform can watch a child through a pidfd."""
    same = os.path.abspath(interpreter) == os.path.abspath(sys.executable)
    return same and hasattr(os, "fork") and hasattr(os, "pidfd_open")


@dataclass
class Sent:
    """A chunk of mini-batches handed to a worker: their outcomes so far, in order."""

    batches: list[int]
    outcomes: list[Outcome]

    @property
    def running(self) -> int:
        """The mini-batch the worker is on (once the chunks before this one are answered)."""
        return self.batches[len(self.outcomes)]


class LocalWorker:
    """One worker process and the driver's ends of its pipes (non-blocking)."""

    def __init__(
        self,
        number: int,
        pid: int,
        to_worker: int,
        from_worker: int,
        log: Path,
        *,
        pidfd: int | None = None,
        pipes: tuple[IO[bytes], IO[bytes]] | None = None,
        popen: Any = None,
    ) -> None:
        self.number, self.pid, self.log = number, pid, log
        self.to_worker, self.from_worker = to_worker, from_worker
        self.ready = False  # init() done
        self.sent: deque[Sent] = deque()  # chunks handed to it and not fully answered
        self.outbox = bytearray()  # requests not yet written to its pipe
        self.inbox = bytearray()  # the start of a reply line
        self.running_since: float | None = None  # when the mini-batch it is on started
        self.timed_out = False
        self.attached = True  # until the driver is done with its pipes
        self.code: int | None = None  # its exit status, once reaped
        self._pidfd = pidfd  # a forked worker
        self._pipes = pipes  # a started worker's pipe files, which own its fds
        self._popen = popen  # a started worker's subprocess.Popen
        self._input_open = self._output_open = True
        for fd in (to_worker, from_worker):
            os.set_blocking(fd, False)

    @property
    def name(self) -> str:
        return f"worker-{self.number}"

    def close_input(self) -> None:
        """The worker sees EOF: it calls shutdown() and exits."""
        if self._input_open:
            self._input_open = False
            if self._pipes is not None:
                self._pipes[0].close()
            else:
                os.close(self.to_worker)

    def close_output(self) -> None:
        if self._output_open:
            self._output_open = False
            if self._pipes is not None:
                self._pipes[1].close()
            else:
                os.close(self.from_worker)

    def kill(self) -> None:
        if self.code is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self._pidfd is not None:  # never another process that reused its pid
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            else:
                self._popen.kill()

    def wait(self, timeout: float | None) -> int | None:
        """Its exit status, reaped; None when it is still running after ``timeout`` seconds."""
        if self.code is not None:
            return self.code
        if self._popen is not None:
            import subprocess  # a started worker only: forked ones never need the module

            try:
                self.code = self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
            return self.code
        assert self._pidfd is not None
        if timeout is not None:  # its pidfd turns readable when it exits
            exits = select.poll()
            exits.register(self._pidfd, select.POLLIN)
            if not exits.poll(timeout * 1000):
                return None
        try:
            _, status = os.waitpid(self.pid, 0)
            self.code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by someone else: its status is lost
            self.code = 255
        os.close(self._pidfd)
        self._pidfd = None
        return self.code


def start_worker(
    spec: ParallelSpec, spec_path: Path, number: int, log_fd: int, log: Path
) -> LocalWorker:
    """``python worker.py SPEC N`` on the step's interpreter."""
    import subprocess  # only for a worker on another interpreter

    proc = subprocess.Popen(
        [spec.interpreter, WORKER_SCRIPT, str(spec_path), str(number)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log_fd,
        cwd=spec.workdir,
        # no start_new_session: workers must die with the step's process group
    )
    assert proc.stdin is not None and proc.stdout is not None
    return LocalWorker(
        number,
        proc.pid,
        proc.stdin.fileno(),
        proc.stdout.fileno(),
        log,
        pipes=(proc.stdin, proc.stdout),
        popen=proc,
    )


def fork_worker(spec: ParallelSpec, number: int, log_fd: int, log: Path) -> LocalWorker:
    """A worker forked from the driver (``can_fork``)."""
    worker_in, driver_out = os.pipe()  # (read end, write end)
    driver_in, worker_out = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child would write the driver's buffered text again
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the driver
        worker_child(spec, number, log_fd, worker_in, worker_out)
    os.close(worker_in)
    os.close(worker_out)
    return LocalWorker(number, pid, driver_out, driver_in, log, pidfd=os.pidfd_open(pid))


def worker_child(
    spec: ParallelSpec, number: int, log_fd: int, proto_in: int, proto_out: int
) -> NoReturn:
    """The forked worker: the state a freshly started worker would have (stdio on its log, the
    attempt's working directory, default signal handling, no exit handlers or open files of the
    driver's), then ``worker.serve`` until the driver closes its pipe."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        atexit._clear()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        low, high = sorted((proto_in, proto_out))
        os.closerange(3, low)
        os.closerange(low + 1, high)
        os.closerange(high + 1, max(os.sysconf("SC_OPEN_MAX"), 1 << 20))
        os.chdir(spec.workdir)
        code = worker_module.serve(
            asdict(spec),
            str(number),
            os.fdopen(proto_in, "rb"),
            os.fdopen(proto_out, "wb"),
        )
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
