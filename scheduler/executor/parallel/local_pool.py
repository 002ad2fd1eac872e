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
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

from scheduler.core.procinfo import exit_description
from scheduler.executor.parallel import worker as worker_module
from scheduler.executor.parallel.pools import Chunk, InitFailed, Outcome, Say, chunk_size
from scheduler.executor.parallel.spec import ParallelSpec

WORKER_SCRIPT = os.path.abspath(worker_module.__file__)
#: Largest reply line (a mini-batch's rows); asyncio's default of 64 KiB is far too small.
LINE_LIMIT = 1 << 30
CLOSE_GRACE = 5.0
PIPELINE_DEPTH = 2  # chunks a worker holds at once: one runs, the next waits in its pipe
MOST_PER_CHUNK = 8  # mini-batches the driver writes (and awaits) at once


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
class _Sent:
    """A chunk of mini-batches written to a worker's pipe: their outcomes so far, in order."""

    batches: list[int]
    outcomes: list[Outcome]
    done: asyncio.Future[list[Outcome]]

    @property
    def running(self) -> int:
        """The mini-batch the worker is on (once the chunks before this one are answered)."""
        return self.batches[len(self.outcomes)]


@dataclass
class LocalWorker:
    number: int
    proc: WorkerProcess
    log: Path
    #: Chunks sent and not fully answered, in the order the worker runs them.
    sent: deque[_Sent] = field(default_factory=deque)
    alive: bool = True  # until its replies end
    timer: asyncio.TimerHandle | None = None  # run_invocation_timeout of the first in ``sent``
    timed_out: bool = False
    reader: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"worker-{self.number}"


class LocalPool:
    """Up to ``process_count_per_node`` worker processes on this machine.

    Each worker holds up to ``PIPELINE_DEPTH`` mini-batches (the driver has that many slots per
    worker): while it runs one, the next already waits in its pipe, so it never sits idle waiting
    for the driver to read a reply and write the next request. Replies come back in the order the
    mini-batches were sent; ``run_invocation_timeout`` is timed from when a mini-batch's run()
    starts (the reply before it arrived), not from when it was queued."""

    def __init__(self, spec: ParallelSpec, spec_path: Path, say: Say) -> None:
        self.spec, self.spec_path, self.say = spec, spec_path, say
        self.slots = 0
        self.chunk = 1
        self._workers: list[LocalWorker | None] = []
        self._starting: dict[int, asyncio.Future[LocalWorker]] = {}
        self._readers: set[asyncio.Task[None]] = set()
        self._started = 0
        self._timeout = spec.run_invocation_timeout if spec.run_invocation_timeout > 0 else None
        self._fork = can_fork(spec.interpreter)

    async def open(self, batches: int) -> None:
        if self.spec.node_count > 1:
            self.say(f"node_count {self.spec.node_count} has no meaning on local processes")
        count = max(1, min(self.spec.process_count_per_node, batches))
        self._workers = [None] * count
        # Slot n feeds worker n % count: the first slots spread over every worker.
        self.slots = max(1, min(count * PIPELINE_DEPTH, batches))
        self.chunk = chunk_size(batches, self.slots, MOST_PER_CHUNK)
        Path(self.spec.workers_dir).mkdir(parents=True, exist_ok=True)

    async def run(self, slot: int, chunk: Chunk) -> list[Outcome]:
        worker = await self._worker(slot % len(self._workers))
        requests = []
        for batch, mini_batch in chunk:
            message: dict[str, object] = {"id": batch, "files": mini_batch.items}
            if mini_batch.partition is not None:
                message["partition"] = mini_batch.partition
            requests.append(json.dumps(message).encode() + b"\n")
        sent = _Sent([b for b, _ in chunk], [], asyncio.get_running_loop().create_future())
        worker.sent.append(sent)
        if len(worker.sent) == 1:
            self._arm_timer(worker)
        assert worker.proc.stdin is not None
        try:
            worker.proc.stdin.write(b"".join(requests))
            await worker.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker is gone: its reader answers every mini-batch it held
        return await sent.done

    async def close(self, *, abort: bool) -> None:
        workers = [w for w in self._workers if w is not None]
        self._workers = [None] * len(self._workers)
        await asyncio.gather(*(self._stop(w, abort=abort) for w in workers))
        await asyncio.gather(*self._readers, return_exceptions=True)

    # ---- replies ------------------------------------------------------------------------------

    async def _read_replies(self, lane: int, worker: LocalWorker) -> None:
        """Answer the worker's mini-batches in order; when its replies end (it died, was killed
        or closed), the one it was running is lost (or timed out) and the rest never ran."""
        assert worker.proc.stdout is not None
        while True:
            line = await worker.proc.stdout.readline()
            if not line:
                break
            sent = worker.sent[0]
            sent.outcomes.append(self._outcome(worker, json.loads(line)))
            if len(sent.outcomes) == len(sent.batches):
                worker.sent.popleft()
                if not sent.done.done():
                    sent.done.set_result(sent.outcomes)
            self._disarm_timer(worker)
            if worker.sent:
                self._arm_timer(worker)
        worker.alive = False
        self._disarm_timer(worker)
        if self._workers[lane] is worker:
            self._workers[lane] = None
        code = await worker.proc.wait()
        running = True  # the first unanswered mini-batch is the one the worker was on
        for sent in worker.sent:
            while len(sent.outcomes) < len(sent.batches):
                sent.outcomes.append(self._ended(worker, code) if running else requeue(worker))
                running = False
            if not sent.done.done():
                sent.done.set_result(sent.outcomes)
        worker.sent.clear()

    def _ended(self, worker: LocalWorker, code: int) -> Outcome:
        """The outcome of the mini-batch a worker was running when it ended."""
        if worker.timed_out:
            return Outcome(
                "timeout",
                worker.name,
                error=f"run() took longer than {self.spec.run_invocation_timeout:g}s; "
                f"{worker.name} (pid {worker.proc.pid}) killed",
            )
        return Outcome("lost", worker.name, error=f"{worker.name} died ({exit_description(code)})")

    def _outcome(self, worker: LocalWorker, reply: dict[str, Any]) -> Outcome:
        items = reply.get("items")
        if reply.get("ok"):
            rows = reply.get("rows") or []
            return Outcome("ok", worker.name, count=reply["count"], rows=rows, items=items)
        return Outcome("error", worker.name, error=reply.get("error"), items=items)

    def _arm_timer(self, worker: LocalWorker) -> None:
        if self._timeout is not None:
            loop = asyncio.get_running_loop()
            worker.timer = loop.call_later(self._timeout, self._time_out, worker)

    def _disarm_timer(self, worker: LocalWorker) -> None:
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None

    def _time_out(self, worker: LocalWorker) -> None:
        """The running mini-batch's run() outlived the timeout: kill the worker; its reader then
        reports the timeout, and a new worker (with a fresh init()) takes the slot."""
        worker.timer = None
        if not worker.alive or not worker.sent:
            return
        worker.timed_out = True
        worker.alive = False  # mini-batches from now on go to its replacement
        _note(
            worker.log,
            f"killed: run() of mini-batch {worker.sent[0].running} exceeded the timeout",
        )
        if worker.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGKILL)

    # ---- workers ------------------------------------------------------------------------------

    async def _worker(self, lane: int) -> LocalWorker:
        """The lane's live worker, started (once, whichever slot asks first) if it has none."""
        while True:
            worker = self._workers[lane]
            if worker is not None and worker.alive:
                return worker
            starting = self._starting.get(lane)
            if starting is None:
                starting = self._starting[lane] = asyncio.ensure_future(self._start())
                starting.add_done_callback(lambda _: self._starting.pop(lane, None))
            worker = await asyncio.shield(starting)
            current = self._workers[lane]
            if current is None or not current.alive:
                self._workers[lane] = worker
                reader = asyncio.ensure_future(self._read_replies(lane, worker))
                worker.reader = reader
                self._readers.add(reader)
                reader.add_done_callback(self._readers.discard)

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


def requeue(worker: LocalWorker) -> Outcome:
    return Outcome("requeue", worker.name)


def _note(log: Path, text: str) -> None:
    with open(log, "a") as handle:
        handle.write(f"[pipesched] {text}\n")
