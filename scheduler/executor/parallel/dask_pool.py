"""parallel_run mini-batches on a Dask cluster.

``node_count`` Dask workers are used (the first ones by name); each runs up to
``min(process_count_per_node, its threads)`` mini-batches at a time. The entry script is imported
and its ``init()`` called once per worker *process*: the loaded module is cached in this module,
which lives in the worker's process, under the attempt's ``run_key``. While the entry script runs
on a worker, that process's working directory is the attempt's (a copy of the source on the
datastore), its ``sys.argv`` is ``[entry_script, *arguments]``, the step's ``PIPESCHED_*``
variables are set (so ``Run.get_context()`` logs to this step) and its prints go to
``<attempt>.workers/dask-<worker>-<pid>.log`` on the datastore.

Each task carries a chunk of mini-batches (several per task when there are many: Dask's cost is
per task, not per mini-batch) and returns one reply per mini-batch. As each mini-batch of a chunk
finishes, the task logs a progress event on the attempt's topic, so each mini-batch's ``run()`` is
timed on its own. A ``run()`` that outlives ``run_invocation_timeout`` cannot be stopped inside a
thread: the worker process is killed (its nanny starts a new one, which runs ``init()`` again) and
the mini-batch counts one failed try; the others of its chunk run again, with no try counted
(those done before it lost their replies with the process). A worker without a nanny is not
killed; its slots are retired instead.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.compute import dask as dask_target
from scheduler.executor.parallel.dask_tasks import init_worker, kill_self, run_batches
from scheduler.executor.parallel.pools import (
    Chunk,
    Dispatcher,
    InitFailed,
    Outcome,
    Say,
    SlotRetired,
    chunk_size,
)
from scheduler.executor.parallel.spec import ParallelSpec

if TYPE_CHECKING:  # the dask extra: imported by the step process once it connects
    from distributed import Client, Future

PIPELINE_DEPTH = 4  # tasks handed to a worker thread at once: one runs, the rest wait
MOST_PER_TASK = 16  # mini-batches in one task, at most
REPLACEMENT_WAIT = 30.0  # seconds a killed worker's nanny gets to bring a new process up


@dataclass
class _Entry:
    future: Future[Any]
    moved: bool = False  # its worker was replaced before it ran: run it again, no try counted
    done: int = 0  # mini-batches of its chunk finished, as its progress events tell
    progressed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Lane:
    """One thread of one worker, fed ``PIPELINE_DEPTH`` mini-batches at a time."""

    address: str  # "" once retired
    inflight: list[_Entry] = field(default_factory=list)
    tail: asyncio.Future[None] | None = None  # done when the lane's last task is done


class DaskPool:
    def __init__(self, spec: ParallelSpec, say: Say) -> None:
        self.spec, self.say = spec, say
        self.slots = 0
        self.chunk = 1
        self._client: Client | None = None
        self._lanes: list[_Lane] = []
        self._slot_lane: list[int] = []
        self._nanny: dict[str, bool] = {}
        self._ready: dict[str, asyncio.Future[None]] = {}
        self._replacing: dict[str, asyncio.Future[None]] = {}  # address -> its replacement
        self._futures: set[Future[Any]] = set()
        self._order = itertools.count()
        self._timeout = spec.run_invocation_timeout if spec.run_invocation_timeout > 0 else None
        self._payload: dict[str, Any] = {}
        self._topic = f"parallel_run-progress-{uuid.uuid4().hex}"
        self._entries: dict[str, _Entry] = {}  # task key -> its entry, for progress events
        self._subscribed = False

    def run_all(self, driver: Dispatcher) -> None:
        asyncio.run(self._run_all(driver))

    async def _run_all(self, driver: Dispatcher) -> None:
        try:
            await self.open(len(driver.batches))
        except BaseException:
            await self.close(abort=True)
            raise
        driver.announce(f"{self.slots} worker slots")
        tasks = [asyncio.ensure_future(self._slot(driver, slot)) for slot in range(self.slots)]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        error = next((t.exception() for t in done if t.exception() is not None), None)
        driver.progress(force=True)
        await self.close(abort=error is not None)
        if error is not None:
            raise error

    async def _slot(self, driver: Dispatcher, slot: int) -> None:
        while taken := driver.take(self.chunk):
            try:
                outcomes = await self.run(slot, [(b, driver.batches[b]) for b in taken])
            except SlotRetired:
                driver.give_back(taken)
                return
            driver.settle(taken, outcomes)

    @property
    def client(self) -> Client:
        """The connected client; only after ``open``."""
        if self._client is None:
            raise RuntimeError("the Dask pool is not open")
        return self._client

    async def open(self, batches: int) -> None:
        spec = self.spec
        assert spec.address is not None, "a dask target has an address"
        client = self._client = await dask_target.connect(spec.address)
        workers = await dask_target.workers_of(client)
        if not workers:
            raise dask_target.NoWorkers(f"the Dask cluster at {spec.address} has no workers")
        chosen = sorted(workers, key=lambda a: (str(workers[a].get("name")), a))
        if len(chosen) < spec.node_count:
            self.say(
                f"node_count is {spec.node_count} but the cluster has {len(chosen)} workers: "
                f"using {len(chosen)}"
            )
        chosen = chosen[: spec.node_count]
        roots = dask_target.roots_touched(
            spec.datastores, [spec.workdir, spec.input, spec.output_dir, *spec.arguments]
        )
        await dask_target.check_shared(client, roots, chosen)
        await asyncio.to_thread(
            dask_target.materialize_workdir, Path(spec.workdir), Path(spec.source_directory)
        )
        Path(spec.workers_dir).mkdir(parents=True, exist_ok=True)
        self._payload = {
            "run_key": spec.run_key,
            "entry_script": dask_target.remote_path(
                spec.entry_script, spec.source_directory, spec.workdir
            ),
            "arguments": list(spec.arguments),
            "workdir": spec.workdir,
            "workers_dir": spec.workers_dir,
            "append_row": spec.append_row,
            "env": dask_target.forwarded_environment(spec.environment),
            "tabular": spec.tabular,
            "partition_format": spec.partition_format,
        }
        for address in chosen:
            self._nanny[address] = workers[address].get("nanny") is not None
            threads = min(spec.process_count_per_node, int(workers[address]["nthreads"]))
            self._lanes.extend(_Lane(address) for _ in range(max(1, threads)))
        # Lanes interleaved, so a few mini-batches still spread over every worker.
        self._slot_lane = [lane for _ in range(PIPELINE_DEPTH) for lane in range(len(self._lanes))]
        self._slot_lane = self._slot_lane[: max(1, batches)]
        self.slots = len(self._slot_lane)
        self.chunk = chunk_size(batches, self.slots, MOST_PER_TASK)
        if self.chunk > 1 and self._timeout is not None:
            client.subscribe_topic(self._topic, self._on_progress)
            self._subscribed = True
        names = ", ".join(f"{workers[a].get('name')} ({a})" for a in chosen)
        self.say(f"Dask workers used: {names}")

    async def run(self, slot: int, chunk: Chunk) -> list[Outcome]:
        lane = self._lanes[self._slot_lane[slot]]
        while lane.address in self._replacing:  # never submit to a worker being replaced
            await asyncio.shield(self._replacing[lane.address])
        if not lane.address:
            raise SlotRetired()
        address = lane.address
        await self._ensure_ready(address)
        if lane.address != address or address in self._replacing:  # replaced meanwhile
            return [Outcome("requeue", address) for _ in chunk]
        key = f"parallel_run-{chunk[0][0]}-{uuid.uuid4().hex}"
        progress = self._topic if len(chunk) > 1 and self._timeout is not None else None
        future = self.client.submit(
            run_batches,
            self._payload,
            [(mini_batch.items, mini_batch.partition) for _, mini_batch in chunk],
            progress,
            key,
            key=key,
            workers=[address],
            allow_other_workers=False,
            pure=False,
            priority=-next(self._order),  # first in, first run: the lane clock relies on it
        )
        entry = self._entries[key] = _Entry(future)
        lane.inflight.append(entry)
        self._futures.add(future)
        ahead = lane.tail
        finished = lane.tail = asyncio.get_running_loop().create_future()
        waiter = asyncio.ensure_future(_result(future))
        try:
            # The timeout clock starts when the lane's earlier task is done: until then this
            # one waits in the worker's queue, not in run().
            await asyncio.wait([waiter, *([ahead] if ahead else [])], return_when="FIRST_COMPLETED")
            replies = await self._wait_timed(entry, waiter)
        except TimeoutError:
            if entry.moved:
                return [Outcome("requeue", address) for _ in chunk]
            await self.client.cancel([future])
            await self._replace(address)
            timeout = Outcome(
                "timeout",
                address,
                error=f"run() took longer than {self.spec.run_invocation_timeout:g}s on "
                f"{address}; the worker process was killed",
            )
            return _around(timeout, entry.done, len(chunk))
        except Exception as exc:  # the worker died, or the task was canceled
            if entry.moved:
                return [Outcome("requeue", address) for _ in chunk]
            lost = Outcome("lost", address, error=f"worker lost: {exc!r}")
            return _around(lost, entry.done, len(chunk))
        finally:
            if not finished.done():
                finished.set_result(None)
            lane.inflight.remove(entry)
            self._futures.discard(future)
            self._entries.pop(key, None)
            waiter.cancel()
        return [_outcome(address, reply) for reply in replies]

    async def _wait_timed(self, entry: _Entry, waiter: asyncio.Future[Any]) -> Any:
        """The task's replies; TimeoutError when one mini-batch's run() (the task's first, or
        the one after its latest progress event) outlives run_invocation_timeout."""
        if self._timeout is None:
            return await waiter
        while True:
            entry.progressed.clear()
            progressed = asyncio.ensure_future(entry.progressed.wait())
            try:
                done, _ = await asyncio.wait(
                    [waiter, progressed], timeout=self._timeout, return_when="FIRST_COMPLETED"
                )
            finally:
                progressed.cancel()
            if waiter in done:
                return waiter.result()
            if not done:
                raise TimeoutError()

    def _on_progress(self, event: tuple[float, dict[str, Any]]) -> None:
        _, message = event
        entry = self._entries.get(message.get("task", ""))
        if entry is not None:
            entry.done = max(entry.done, int(message["done"]))
            entry.progressed.set()

    async def close(self, *, abort: bool) -> None:
        client = self._client
        if client is None:
            return
        if self._subscribed:
            client.unsubscribe_topic(self._topic)
        if self._futures:
            await client.cancel(list(self._futures))
        logs = sorted(Path(self.spec.workers_dir).glob("dask-*.log"))
        for log in logs:
            self.say(f"worker log: {log}")
        await client.close()

    # ---- workers ------------------------------------------------------------------------------

    async def _ensure_ready(self, address: str) -> None:
        """init() once per worker process, before the first mini-batch is timed."""
        ready = self._ready.get(address)
        if ready is None:
            ready = self._ready[address] = asyncio.ensure_future(self._init(address))
        await asyncio.shield(ready)

    async def _init(self, address: str) -> None:
        future = self.client.submit(
            init_worker,
            self._payload,
            key=f"parallel_run-init-{uuid.uuid4().hex}",
            workers=[address],
            allow_other_workers=False,
            pure=False,
        )
        try:
            reply = await _result(future)
        except Exception as exc:  # the worker died during init()
            raise InitFailed(f"Dask worker {address} was lost during init(): {exc!r}") from None
        if "init_error" in reply:
            raise InitFailed(
                f"init() failed on Dask worker {address}: {reply['init_error']} "
                f"(see {reply['log']})"
            )
        self.say(f"worker {address} (pid {reply['pid']}) ready; its log: {reply['log']}")

    async def _replace(self, address: str) -> None:
        """Kill a worker whose run() hangs and move its lanes to the process its nanny starts.
        Mini-batches queued behind the hung one are canceled and run again, with no try lost."""
        if address not in self._replacing:
            self._replacing[address] = asyncio.ensure_future(self._do_replace(address))
        await asyncio.shield(self._replacing[address])

    async def _do_replace(self, address: str) -> None:
        try:
            await self._move_lanes(address)
        finally:
            del self._replacing[address]

    async def _move_lanes(self, address: str) -> None:
        lanes = [other for other in self._lanes if other.address == address]
        queued = [e for other in lanes for e in other.inflight if e.future.status != "finished"]
        for entry in queued:
            entry.moved = True
        if queued:
            await self.client.cancel([e.future for e in queued])
        replacement = ""
        if not self._nanny.get(address):
            self.say(f"worker {address} has no nanny and cannot be restarted: its slots retire")
        else:
            before = set(await dask_target.workers_of(self.client))
            await self.client.run(kill_self, workers=[address], on_error="return")
            in_use = {other.address for other in self._lanes}
            deadline = time.monotonic() + REPLACEMENT_WAIT
            while not replacement and time.monotonic() < deadline:
                now = await dask_target.workers_of(self.client)
                fresh = sorted(set(now) - before - in_use)
                if fresh:
                    replacement = fresh[0]
                    self._nanny[replacement] = now[replacement].get("nanny") is not None
                else:
                    await asyncio.sleep(0.1)
            self.say(
                f"worker {address} killed; {replacement} takes its place"
                if replacement
                else f"worker {address} killed and not replaced within {REPLACEMENT_WAIT:g}s"
            )
        for other in lanes:
            other.address = replacement
        self._ready.pop(address, None)


async def _result(future: Future[Any]) -> Any:
    return await future


def _outcome(address: str, reply: dict[str, Any]) -> Outcome:
    items = reply.get("items")
    if reply["ok"]:
        return Outcome(
            "ok", address, count=reply["count"], rows=reply.get("rows") or [], items=items
        )
    return Outcome("error", address, error=reply["error"], items=items)


def _around(ended: Outcome, done: int, size: int) -> list[Outcome]:
    """A chunk whose task ended with its mini-batch ``done`` running: that one gets ``ended``;
    the others run again, no try counted (those before it lost their replies with the task)."""
    again = Outcome("requeue", ended.worker)
    return [ended if position == done else again for position in range(size)]
