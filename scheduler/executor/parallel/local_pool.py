"""parallel_run workers as local processes of the step's interpreter.

When the step's interpreter is the driver's own, each worker is forked from the driver: no new
interpreter to start, nothing to import twice. Otherwise it is ``python worker.py SPEC N``. Either
way its stdout and stderr are appended to ``<attempt>.workers/worker-N.log`` and it speaks JSON
lines on private pipes (``worker.serve``). Workers stay in the step's process group — no ``start_new_session`` — so the executor's group kill (timeout, cancel,
shutdown) reaches them too. A worker whose ``run()`` outlives ``run_invocation_timeout`` is killed
and a new one (with a fresh ``init()``) takes its slot.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn, Protocol

from scheduler.core.procinfo import exit_description
from scheduler.executor.parallel import worker as worker_module
from scheduler.executor.parallel.pools import InitFailed, MiniBatch, Outcome, Say
from scheduler.executor.parallel.spec import ParallelSpec

WORKER_SCRIPT = os.path.abspath(worker_module.__file__)
#: Largest reply line (a mini-batch's rows); asyncio's default of 64 KiB is far too small.
LINE_LIMIT = 1 << 30
CLOSE_GRACE = 5.0


class WorkerProcess(Protocol):
    """What the pool needs of a worker process: a started interpreter (asyncio's ``Process``) or
    a fork of the driver (``ForkedProcess``)."""

    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader | None

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...


class ForkedProcess:
    """A worker forked from the driver, watched through a pidfd: it is reaped as soon as it exits,
    and a signal never reaches another process that reused its pid."""

    def __init__(self, pid: int, stdin: asyncio.StreamWriter, stdout: asyncio.StreamReader) -> None:
        self.pid = pid
        self.stdin: asyncio.StreamWriter | None = stdin
        self.stdout: asyncio.StreamReader | None = stdout
        self._code: int | None = None
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._pidfd = os.pidfd_open(pid)
        loop.add_reader(self._pidfd, self._reap)

    @property
    def returncode(self) -> int | None:
        return self._code

    def _reap(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        try:
            _, status = os.waitpid(self.pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by someone else: its status is lost
            code = 255
        os.close(self._pidfd)
        self._code = code
        self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        if self._code is None:
            signal.pidfd_send_signal(self._pidfd, sig)


def can_fork(interpreter: str) -> bool:
    """Fork workers only when they would run on this very interpreter (same path, so the same
    environment and site-packages) and the platform can watch a child through a pidfd."""
    same = os.path.abspath(interpreter) == os.path.abspath(sys.executable)
    return same and hasattr(os, "fork") and hasattr(os, "pidfd_open")


@dataclass
class LocalWorker:
    number: int
    proc: WorkerProcess
    log: Path

    @property
    def name(self) -> str:
        return f"worker-{self.number}"


class LocalPool:
    """Up to ``process_count_per_node`` worker processes on this machine."""

    def __init__(self, spec: ParallelSpec, spec_path: Path, say: Say) -> None:
        self.spec, self.spec_path, self.say = spec, spec_path, say
        self.slots = 0
        self._workers: list[LocalWorker | None] = []
        self._started = 0
        self._timeout = spec.run_invocation_timeout if spec.run_invocation_timeout > 0 else None
        self._fork = can_fork(spec.interpreter)

    async def open(self, batches: int) -> None:
        if self.spec.node_count > 1:
            self.say(f"node_count {self.spec.node_count} has no meaning on local processes")
        self.slots = max(1, min(self.spec.process_count_per_node, batches))
        self._workers = [None] * self.slots
        Path(self.spec.workers_dir).mkdir(parents=True, exist_ok=True)

    async def run(self, slot: int, batch: int, mini_batch: MiniBatch) -> Outcome:
        worker = self._workers[slot]
        if worker is None:
            worker = self._workers[slot] = await self._start()
        message: dict[str, object] = {"id": batch, "files": mini_batch.items}
        if mini_batch.partition is not None:
            message["partition"] = mini_batch.partition
        request = json.dumps(message).encode() + b"\n"
        assert worker.proc.stdin is not None and worker.proc.stdout is not None
        try:
            worker.proc.stdin.write(request)
            await worker.proc.stdin.drain()
            line = await asyncio.wait_for(worker.proc.stdout.readline(), self._timeout)
        except TimeoutError:
            await self._discard(slot, worker)
            _note(worker.log, f"killed: run() of mini-batch {batch} exceeded the timeout")
            return Outcome(
                "timeout",
                worker.name,
                error=f"run() took longer than {self.spec.run_invocation_timeout:g}s; "
                f"{worker.name} (pid {worker.proc.pid}) killed",
            )
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        if not line:
            code = await worker.proc.wait()
            self._workers[slot] = None
            return Outcome(
                "lost", worker.name, error=f"{worker.name} died ({exit_description(code)})"
            )
        reply = json.loads(line)
        items = reply.get("items")
        if reply.get("ok"):
            rows = reply.get("rows") or []
            return Outcome("ok", worker.name, count=reply["count"], rows=rows, items=items)
        return Outcome("error", worker.name, error=reply.get("error"), items=items)

    async def close(self, *, abort: bool) -> None:
        workers = [w for w in self._workers if w is not None]
        self._workers = [None] * self.slots
        await asyncio.gather(*(self._stop(w, abort=abort) for w in workers))

    # ---- workers ------------------------------------------------------------------------------

    async def _start(self) -> LocalWorker:
        self._started += 1
        number = self._started
        log = Path(self.spec.workers_dir) / f"worker-{number}.log"
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            proc = await (self._forked(number, fd) if self._fork else self._spawned(number, fd))
        finally:
            os.close(fd)
        worker = LocalWorker(number, proc, log)
        assert proc.stdout is not None
        line = await proc.stdout.readline()  # init() has no bound of its own: the step's timeout
        if not line:
            code = await proc.wait()
            raise InitFailed(
                f"{worker.name} exited ({exit_description(code)}) before init() finished; see {log}"
            )
        reply = json.loads(line)
        if "init_error" in reply:
            await self._stop(worker, abort=True)
            raise InitFailed(f"init() failed in {worker.name}: {reply['init_error']} (see {log})")
        self.say(f"{worker.name} (pid {proc.pid}) ready; its log: {log}")
        return worker

    async def _spawned(self, number: int, log_fd: int) -> WorkerProcess:
        return await asyncio.create_subprocess_exec(
            self.spec.interpreter,
            WORKER_SCRIPT,
            str(self.spec_path),
            str(number),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_fd,
            cwd=self.spec.workdir,
            limit=LINE_LIMIT,
            # no start_new_session: workers must die with the step's process group
        )

    async def _forked(self, number: int, log_fd: int) -> WorkerProcess:
        worker_in, driver_out = os.pipe()  # (read end, write end)
        driver_in, worker_out = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would write the driver's buffered text again
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the driver's event loop
            _worker_child(self.spec, number, log_fd, worker_in, worker_out)
        os.close(worker_in)
        os.close(worker_out)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=LINE_LIMIT, loop=loop)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(driver_in, "rb", buffering=0)
        )
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
            os.fdopen(driver_out, "wb", buffering=0),
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        return ForkedProcess(pid, writer, reader)

    async def _discard(self, slot: int, worker: LocalWorker) -> None:
        self._workers[slot] = None
        await self._stop(worker, abort=True)

    async def _stop(self, worker: LocalWorker, *, abort: bool) -> None:
        proc = worker.proc
        if not abort and proc.stdin is not None:
            proc.stdin.close()  # the worker sees EOF, calls shutdown() and exits
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), CLOSE_GRACE)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)
            await proc.wait()


def _worker_child(
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
        os.closerange(high + 1, 1 << 20)
        os.chdir(spec.workdir)
        asyncio.set_event_loop_policy(None)  # forget the driver's loop
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


def _note(log: Path, text: str) -> None:
    with open(log, "a") as handle:
        handle.write(f"[pipesched] {text}\n")
