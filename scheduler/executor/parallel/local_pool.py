"""parallel_run workers as local processes of the step's interpreter.

Each worker is ``python worker.py SPEC N`` with its stderr (and, after it moves the protocol pipes
away, its stdout) appended to ``<attempt>.workers/worker-N.log``. Workers stay in the step's
process group — no ``start_new_session`` — so the executor's group kill (timeout, cancel,
shutdown) reaches them too. A worker whose ``run()`` outlives ``run_invocation_timeout`` is killed
and a new one (with a fresh ``init()``) takes its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from scheduler.core.procinfo import exit_description
from scheduler.executor.parallel import worker as worker_module
from scheduler.executor.parallel.pools import InitFailed, MiniBatch, Outcome, Say
from scheduler.executor.parallel.spec import ParallelSpec

WORKER_SCRIPT = os.path.abspath(worker_module.__file__)
#: Largest reply line (a mini-batch's rows); asyncio's default of 64 KiB is far too small.
LINE_LIMIT = 1 << 30
CLOSE_GRACE = 5.0


@dataclass
class LocalWorker:
    number: int
    proc: asyncio.subprocess.Process
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
            proc = await asyncio.create_subprocess_exec(
                self.spec.interpreter,
                WORKER_SCRIPT,
                str(self.spec_path),
                str(number),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=fd,
                cwd=self.spec.workdir,
                limit=LINE_LIMIT,
                # no start_new_session: workers must die with the step's process group
            )
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


def _note(log: Path, text: str) -> None:
    with open(log, "a") as handle:
        handle.write(f"[pipesched] {text}\n")
