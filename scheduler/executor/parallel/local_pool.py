"""parallel_run workers as local processes of the step's interpreter.

When the step's interpreter is the driver's own, each worker is forked from the driver: no new
interpreter to start, nothing to import twice. Otherwise it is ``python worker.py SPEC N``. Either
way its stdout and stderr are appended to ``<attempt>.workers/worker-N.log`` and it speaks JSON
lines on private pipes (``worker.serve``). Workers stay in the step's process group — no
``start_new_session`` — so the executor's group kill (timeout, cancel, shutdown) reaches them too.

The driver runs them from one plain loop over the pipes (``selectors``; no asyncio, whose import
alone costs a short step a noticeable share of its time). Each worker holds up to
``PIPELINE_DEPTH`` chunks of mini-batches: while it runs one mini-batch, the next already waits in
its pipe, so it never sits idle waiting for the driver. It answers each mini-batch as soon as it is
done, so each ``run()`` is timed on its own: one that outlives ``run_invocation_timeout`` gets its
worker killed, the mini-batches queued behind it run again (no try counted) and a new worker (with a
fresh ``init()``) takes its place.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import time
from pathlib import Path
from typing import Any

from scheduler.executor.parallel.local_workers import (
    LocalWorker,
    Sent,
    can_fork,
    fork_worker,
    start_worker,
)
from scheduler.executor.parallel.pools import Dispatcher, InitFailed, Outcome, Say, chunk_size
from scheduler.executor.parallel.spec import ParallelSpec

CLOSE_GRACE = 5.0
PIPELINE_DEPTH = 2  # chunks a worker holds at once: one runs, the next waits in its pipe
MOST_PER_CHUNK = 8  # mini-batches the driver hands a worker at once
READ_SIZE = 1 << 16


class LocalPool:
    """Up to ``process_count_per_node`` worker processes on this machine."""

    def __init__(self, spec: ParallelSpec, spec_path: Path, say: Say) -> None:
        self.spec, self.spec_path, self.say = spec, spec_path, say
        self.chunk = 1
        self._workers: list[LocalWorker | None] = []
        self._selector = selectors.DefaultSelector()
        self._started = 0
        self._timeout = spec.run_invocation_timeout if spec.run_invocation_timeout > 0 else None
        self._fork = can_fork(spec.interpreter)

    def run_all(self, driver: Dispatcher) -> None:
        spec = self.spec
        if spec.node_count > 1:
            self.say(f"node_count {spec.node_count} has no meaning on local processes")
        count = max(1, min(spec.process_count_per_node, len(driver.batches)))
        self._workers = [None] * count
        self.chunk = chunk_size(len(driver.batches), count * PIPELINE_DEPTH, MOST_PER_CHUNK)
        Path(spec.workers_dir).mkdir(parents=True, exist_ok=True)
        driver.announce(f"{count} worker slots")
        try:
            self._loop(driver)
        except BaseException:
            driver.progress(force=True)
            self._close(abort=True)
            raise
        driver.progress(force=True)
        self._close(abort=False)

    # ---- the loop -------------------------------------------------------------------------------

    def _loop(self, driver: Dispatcher) -> None:
        while True:
            self._dispatch(driver)
            busy = [w for w in self._workers if w is not None and w.sent]
            if not busy:
                return
            for key, mask in self._selector.select(self._wait(busy)):
                worker: LocalWorker = key.data
                if worker.attached and mask & selectors.EVENT_WRITE:
                    self._flush(worker)
                if worker.attached and mask & selectors.EVENT_READ:
                    self._receive(worker, driver)
            self._time_out(busy)

    def _dispatch(self, driver: Dispatcher) -> None:
        """Start a worker wherever one is missing while mini-batches wait, and top every worker up
        to PIPELINE_DEPTH chunks (a starting one too, so that every worker started gets work;
        its requests are written once its init() is done)."""
        for depth in range(1, PIPELINE_DEPTH + 1):  # round-robin: the first chunks spread out
            for lane, worker in enumerate(self._workers):
                if worker is None:
                    if not driver.waiting():
                        continue
                    worker = self._workers[lane] = self._start()
                if worker.timed_out or len(worker.sent) >= depth:
                    continue
                taken = driver.take(self.chunk)
                if not taken:
                    return
                self._send(worker, taken, driver)

    def _wait(self, busy: list[LocalWorker]) -> float | None:
        """Seconds until the first running mini-batch's run_invocation_timeout."""
        if self._timeout is None:
            return None
        starts = [w.running_since for w in busy if w.running_since is not None]
        if not starts:
            return None
        return max(0.0, min(starts) + self._timeout - time.monotonic())

    def _time_out(self, busy: list[LocalWorker]) -> None:
        if self._timeout is None:
            return
        now = time.monotonic()
        for worker in busy:
            since = worker.running_since
            if not worker.attached or since is None or worker.timed_out:
                continue
            if now - since < self._timeout or not worker.sent:
                continue
            worker.timed_out = True  # its replies end soon: _ended reports the timeout
            running = worker.sent[0].running
            _note(worker.log, f"killed: run() of mini-batch {running} exceeded the timeout")
            worker.kill()

    # ---- requests and replies -----------------------------------------------------------------

    def _send(self, worker: LocalWorker, taken: list[int], driver: Dispatcher) -> None:
        for batch in taken:
            mini_batch = driver.batches[batch]
            message: dict[str, object] = {"id": batch, "files": mini_batch.items}
            if mini_batch.partition is not None:
                message["partition"] = mini_batch.partition
            worker.outbox += json.dumps(message).encode() + b"\n"
        worker.sent.append(Sent(taken, []))
        if worker.ready:
            if len(worker.sent) == 1:
                worker.running_since = time.monotonic()
            self._flush(worker)

    def _flush(self, worker: LocalWorker) -> None:
        """Write what the pipe takes now; the rest when the selector says it has room."""
        written = 0
        try:
            written = os.write(worker.to_worker, worker.outbox)
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            written = len(worker.outbox)  # it is gone: _ended answers what it held
        del worker.outbox[:written]
        registered = worker.to_worker in self._selector.get_map()
        if worker.outbox and not registered:
            self._selector.register(worker.to_worker, selectors.EVENT_WRITE, worker)
        elif not worker.outbox and registered:
            self._selector.unregister(worker.to_worker)

    def _receive(self, worker: LocalWorker, driver: Dispatcher) -> None:
        try:
            data = os.read(worker.from_worker, READ_SIZE)
        except BlockingIOError:
            return
        if not data:
            self._ended(worker, driver)
            return
        worker.inbox += data
        if b"\n" not in data:
            return
        *lines, rest = worker.inbox.split(b"\n")
        worker.inbox = bytearray(rest)
        for line in lines:
            reply = json.loads(line)
            if not worker.ready:
                self._ready(worker, reply)
                continue
            sent = worker.sent[0]
            sent.outcomes.append(_outcome(worker, reply))
            done = len(sent.outcomes) == len(sent.batches)
            if done:
                worker.sent.popleft()
            worker.running_since = time.monotonic() if worker.sent else None
            if done:
                driver.settle(sent.batches, sent.outcomes)

    def _ready(self, worker: LocalWorker, reply: dict[str, Any]) -> None:
        if "init_error" in reply:
            self._forget(worker)
            worker.kill()
            worker.wait(None)
            raise InitFailed(
                f"init() failed in {worker.name}: {reply['init_error']} (see {worker.log})"
            )
        worker.ready = True
        self.say(f"{worker.name} (pid {worker.pid}) ready; its log: {worker.log}")
        if worker.sent:
            worker.running_since = time.monotonic()
        self._flush(worker)

    def _ended(self, worker: LocalWorker, driver: Dispatcher) -> None:
        """Its replies ended (it died, or was killed): the mini-batch it was on is lost (or timed
        out), those queued behind it never ran."""
        self._forget(worker)
        code = worker.wait(CLOSE_GRACE)
        if code is None:  # it closed its pipe but lives on
            worker.kill()
            code = worker.wait(None)
        assert code is not None
        if not worker.ready:
            raise InitFailed(
                f"{worker.name} exited ({exit_description(code)}) before init() finished; "
                f"see {worker.log}"
            )
        running = True  # the first unanswered mini-batch is the one it was on
        chunks = list(worker.sent)
        worker.sent.clear()
        for sent in chunks:
            while len(sent.outcomes) < len(sent.batches):
                ended = self._end_of(worker, code) if running else Outcome("requeue", worker.name)
                sent.outcomes.append(ended)
                running = False
            driver.settle(sent.batches, sent.outcomes)

    def _end_of(self, worker: LocalWorker, code: int) -> Outcome:
        """The outcome of the mini-batch a worker was running when it ended."""
        if worker.timed_out:
            return Outcome(
                "timeout",
                worker.name,
                error=f"run() took longer than {self.spec.run_invocation_timeout:g}s; "
                f"{worker.name} (pid {worker.pid}) killed",
            )
        return Outcome("lost", worker.name, error=f"{worker.name} died ({exit_description(code)})")

    # ---- workers ------------------------------------------------------------------------------

    def _start(self) -> LocalWorker:
        self._started += 1
        number = self._started
        log = Path(self.spec.workers_dir) / f"worker-{number}.log"
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            worker = (
                fork_worker(self.spec, number, fd, log)
                if self._fork
                else start_worker(self.spec, self.spec_path, number, fd, log)
            )
        finally:
            os.close(fd)
        self._selector.register(worker.from_worker, selectors.EVENT_READ, worker)
        return worker

    def _forget(self, worker: LocalWorker) -> None:
        """No more traffic with the worker: its pipes leave the selector and close."""
        worker.attached = False
        for fd in (worker.to_worker, worker.from_worker):
            with contextlib.suppress(KeyError):
                self._selector.unregister(fd)
        worker.close_input()
        worker.close_output()
        if worker in self._workers:
            self._workers[self._workers.index(worker)] = None

    def _close(self, *, abort: bool) -> None:
        workers = [w for w in self._workers if w is not None]
        for worker in workers:
            self._forget(worker)
            if abort:
                worker.kill()
        deadline = time.monotonic() + CLOSE_GRACE
        for worker in workers:
            if worker.wait(max(0.0, deadline - time.monotonic())) is None:
                worker.kill()
                worker.wait(None)
        self._selector.close()


def _outcome(worker: LocalWorker, reply: dict[str, Any]) -> Outcome:
    items = reply.get("items")
    if reply.get("ok"):
        rows = reply.get("rows") or []
        return Outcome("ok", worker.name, count=reply["count"], rows=rows, items=items)
    return Outcome("error", worker.name, error=reply.get("error"), items=items)


def exit_description(code: int) -> str:
    # lazy: only a worker that died needs it, and procinfo brings socket into every step's start.
    from scheduler.core.procinfo import exit_description as describe

    return describe(code)


def _note(log: Path, text: str) -> None:
    with open(log, "a") as handle:
        handle.write(f"[pipesched] {text}\n")
