"""Warm steps: a compute target that lists ``warm_imports`` gets a zygote (``zygote.py``), a
process that imported those modules once, and its Python steps are forked from it instead of
spawned, so a step that imports pandas and scikit-learn starts in milliseconds.

A step is forked only when a fork and a spawn cannot be told apart in what matters; otherwise it
is spawned, as every step is without ``warm_imports``:

- it runs ``python script.py ...`` or ``python [-P] -m module ...`` on the interpreter the
  zygote runs (pipesched's own): a step that names another interpreter is spawned;
- its step definition does not say ``warm: false``;
- its interpreter start-up variables (``PYTHON*``: the path, hash seed, buffering, ...) are the
  zygote's: a step with its own ``PYTHONPATH`` is spawned;
- the zygote is ready: not starting (in the daemon; ``pipesched run`` waits for it), not
  broken, and none of its modules' files has changed on disk since it imported them;
- this process is a child subreaper (the forked step must become its child), on Linux.

A zygote that dies or breaks is restarted, with a growing pause between failures; one whose
modules changed on disk is retired and a new one started once the files have been quiet for a
moment. A step never waits on a broken zygote: it is spawned.

Modules known not to survive ``fork`` keep their target cold (``FORK_UNSAFE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.compute import reaper, zygote
from scheduler.core.lazylog import lazy_logger
from scheduler.store.private_files import create_private_dir

log = lazy_logger("scheduler.compute.warm")

ZYGOTE_PROGRAM = zygote.__file__
#: Modules whose state does not survive ``fork``: a target listing one stays cold.
FORK_UNSAFE = {
    "torch": "CUDA cannot be initialised again in a forked child, and its thread pools are "
    "left locked",
    "tensorflow": "starts thread pools when imported; a forked child can deadlock on their locks",
    "jax": "multithreaded from import; a forked child can deadlock (JAX warns about os.fork)",
    "grpc": "channels made before a fork hang in the child unless fork support is enabled",
    "ray": "starts background threads and connects to its cluster when imported",
}
ENVIRONMENT_ROOM_BYTES = 64 * 1024
REQUEST_TIMEOUT = 5.0  # a fork request unanswered this long: the zygote is broken
START_TIMEOUT = 600.0  # imports that take longer than this: the zygote is broken
QUIET_AFTER_CHANGE = 2.0  # seconds without file changes before a new zygote starts
MAX_RESTART_PAUSE = 300.0
MODULE_SUFFIXES = (".py", ".so", ".pyd", ".pth")


AUTO = ("auto",)
MAX_LEARNED = 200  # modules an ``auto`` target's zygote imports at most
#: Never preloaded: pipesched's own modules, and names that stand for the step itself.
_NOT_LEARNED = frozenset({"__main__", "scheduler", "azureml", "azureml_user", "sitecustomize"})


def learned_imports(folder: Path, target: str) -> tuple[str, ...]:
    """What the forked steps of an ``auto`` target imported, as noted at their exits."""
    try:
        names = json.loads((folder / f"{target}.imports.json").read_text())
    except (OSError, ValueError):
        return ()
    if not isinstance(names, list):
        return ()
    return tuple(n for n in names if isinstance(n, str) and n.isidentifier())[:MAX_LEARNED]


def record_imports(folder: Path, target: str, names: Iterable[str]) -> bool:
    """Add ``names`` to an ``auto`` target's learned imports; True when the list grew."""
    known = learned_imports(folder, target)
    new = [
        n
        for n in sorted(set(names))
        if n not in known and n not in _NOT_LEARNED and n.isidentifier() and not n.startswith("_")
    ]
    if not new or len(known) >= MAX_LEARNED:
        return False
    path = folder / f"{target}.imports.json"
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps([*known, *new][:MAX_LEARNED]))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return True


class ZygoteUnavailable(Exception):
    """The zygote could not fork this step: spawn it."""


def fork_unsafe(modules: Iterable[str]) -> dict[str, str]:
    """The listed modules known not to survive ``fork``, with the reason for each."""
    return {
        name: FORK_UNSAFE[name.partition(".")[0]]
        for name in modules
        if name.partition(".")[0] in FORK_UNSAFE
    }


def startup_variables(env: Mapping[str, str]) -> dict[str, str]:
    """The variables the interpreter reads once, when it starts: a fork inherits the zygote's."""
    return {name: value for name, value in env.items() if name.startswith("PYTHON")}


def unsupported() -> str | None:
    """Why this process cannot adopt and wait for forked steps, or None when it can: it must
    be a child subreaper (the steps become its children) and have ``pidfd_open`` (Linux 5.3)."""
    if not hasattr(os, "pidfd_open"):
        return "this system has no pidfd_open"
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as exc:
        return f"pidfd_open refused: {exc}"
    if not reaper.become_subreaper():
        return "this process cannot become a child subreaper"
    return None


def step_program(argv: Sequence[str]) -> bool:
    """Whether ``argv`` (after the interpreter) is a form the zygote runs: ``script.py ...``,
    ``-m module ...`` or ``-P -m module ...``."""
    rest = list(argv[1:])
    if rest[:1] == ["-P"]:
        rest = rest[1:]
    if rest[:1] == ["-m"]:
        return len(rest) >= 2 and bool(rest[1]) and not rest[1].startswith("-")
    return bool(rest) and not rest[0].startswith("-") and rest[0] != ""


class ForkedChild:
    """A forked step, re-parented to this process: waited for by its pid like a spawned one
    (the subset of ``asyncio.subprocess.Process`` that ``LocalProcess`` uses)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[int] = loop.create_future()
        self._pidfd = os.pidfd_open(pid)
        loop.add_reader(self._pidfd, self._check)
        self._check()

    def _check(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not ours after all: nothing to wait for
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.returncode = os.waitstatus_to_exitcode(status)
        self._ended.set_result(self.returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)


@dataclass
class Zygote:
    """One warm process for one compute target, on one interpreter."""

    target: str
    interpreter: str
    modules: tuple[str, ...]
    env: dict[str, str]
    log_path: Path
    state: str = "stopped"  # stopped | starting | ready | broken | stale
    error: str | None = None
    failures: int = 0
    retry_at: float = 0.0
    forks: int = 0
    folders: list[str] = field(default_factory=list)
    stale_requested: bool = False  # set by the file watch's thread, acted on by ``poll``
    learn_dir: Path | None = None  # ``warm_imports: auto``: where forked steps note their imports
    _proc: subprocess.Popen[bytes] | None = None
    _channel: socket.socket | None = None
    _started_at: float = 0.0
    _readable_soon: asyncio.Future[None] | None = None
    _lock: asyncio.Lock | None = None
    _lock_loop: asyncio.AbstractEventLoop | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the process; it imports the modules and says when it is ready."""
        self.close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # Room in the zygote's environment block for each step's variables
            # (``zygote.show_environment``).
            env = {**self.env, zygote.ENVIRONMENT_ROOM: " " * ENVIRONMENT_ROOM_BYTES}
            self._proc = subprocess.Popen(
                [
                    self.interpreter,
                    ZYGOTE_PROGRAM,
                    str(theirs.fileno()),
                    *(["--tolerant"] if self.learn_dir is not None else []),
                    *self.modules,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=fd,
                pass_fds=(theirs.fileno(),),
                process_group=0,  # a terminal's Ctrl-C is for the steps, not for the zygote
            )
        except OSError as exc:
            ours.close()
            self._broken(f"could not start: {exc}")
            return
        finally:
            os.close(fd)
            theirs.close()
        self._channel = ours
        self.state = "starting"
        self.error = None
        self._started_at = time.monotonic()

    def poll(self) -> str:
        """The state, after reading a ready message that has arrived or noticing a death."""
        if self.stale_requested:
            self.stale_requested = False
            self.mark_stale()
        if self.state in ("starting", "ready") and self._proc is not None:
            if self._proc.poll() is not None and (self.state == "ready" or not self._readable()):
                self._broken(f"exited with {self._proc.returncode}{self._log_tail()}")
            elif self.state == "starting":
                if self._readable():
                    self._read_ready()
                elif time.monotonic() - self._started_at > START_TIMEOUT:
                    self._broken(f"not ready after {START_TIMEOUT:g}s")
        return self.state

    async def wait_ready(self) -> bool:
        """Wait while it starts; True once it is ready. Every waiter shares one reader on the
        socket (the loop keeps one callback per descriptor)."""
        loop = asyncio.get_running_loop()
        while self.poll() == "starting":
            assert self._channel is not None
            if self._readable_soon is None or self._readable_soon.done():
                self._readable_soon = loop.create_future()
                loop.add_reader(self._channel.fileno(), self._on_readable, self._channel.fileno())
            with contextlib.suppress(TimeoutError):  # a second later: also notices a death
                await asyncio.wait_for(asyncio.shield(self._readable_soon), 1.0)
        return self.state == "ready"

    def _on_readable(self, fd: int) -> None:
        asyncio.get_running_loop().remove_reader(fd)
        if self._readable_soon is not None and not self._readable_soon.done():
            self._readable_soon.set_result(None)

    async def fork(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_fd: int,
        cgroup_procs: str | None,
    ) -> int:  # fmt: skip
        """Fork one step; its pid. Raises ``ZygoteUnavailable`` (and marks the zygote broken)
        when the zygote does not answer. One request at a time; the loop runs on while the
        zygote forks."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        lock = self._lock
        async with lock:
            if self.poll() != "ready" or self._channel is None:
                raise ZygoteUnavailable(self.state)
            channel = self._channel
            request = {
                "argv": list(argv),
                "cwd": str(cwd),
                "env": dict(env),
                "cgroup": cgroup_procs,
                "learn": str(self.learn_dir) if self.learn_dir is not None else None,
            }
            try:
                channel.settimeout(REQUEST_TIMEOUT)
                zygote.send(channel, request, [log_fd])
                await self._answered(channel)
                reply, fds = zygote.receive(channel)
            except (OSError, ValueError, EOFError, TimeoutError) as exc:
                self._broken(f"fork request failed: {exc!r}")
                raise ZygoteUnavailable(self.error) from exc
        for extra in fds:
            os.close(extra)
        if reply is None:
            self._broken(f"closed its socket{self._log_tail()}")
            raise ZygoteUnavailable(self.error)
        if "pid" not in reply:
            raise ZygoteUnavailable(str(reply.get("error")))
        self.forks += 1
        return int(reply["pid"])

    @staticmethod
    async def _answered(channel: socket.socket) -> None:
        """Until the zygote's answer can be read (``REQUEST_TIMEOUT`` at most)."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        fd = channel.fileno()
        loop.add_reader(fd, _settle, readable)
        try:
            await asyncio.wait_for(readable, REQUEST_TIMEOUT)
        finally:
            loop.remove_reader(fd)

    def mark_stale(self) -> None:
        """A module's file changed on disk: no more forks from this process."""
        if self.state in ("starting", "ready"):
            self.close()
            self.state = "stale"
            self.retry_at = time.monotonic() + QUIET_AFTER_CHANGE
            log.info("zygote_stale", target=self.target)
        elif self.state == "stale":
            self.retry_at = time.monotonic() + QUIET_AFTER_CHANGE

    def due_for_restart(self) -> bool:
        return self.state in ("broken", "stale", "stopped") and time.monotonic() >= self.retry_at

    def resident_bytes(self) -> int | None:
        proc = self._proc
        return resident_bytes(proc.pid) if proc is not None and self.state == "ready" else None

    def close(self) -> None:
        """Stop the process (its spare step, if any, sees the socket close and exits)."""
        channel, proc = self._channel, self._proc
        self._channel, self._proc = None, None
        if channel is not None:
            waiting = self._readable_soon
            if waiting is not None and not waiting.done():
                waiting.get_loop().remove_reader(channel.fileno())
                waiting.set_result(None)
            channel.close()
        if proc is not None:
            # SIGKILL at once: it holds nothing to save, and its own exit would free a heap
            # of hundreds of megabytes while the daemon's loop waits.
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait()
        if self.state in ("starting", "ready"):
            self.state = "stopped"

    def _readable(self) -> bool:
        if self._channel is None:
            return False
        return bool(select.select([self._channel], [], [], 0)[0])

    def _read_ready(self) -> None:
        assert self._channel is not None
        try:
            self._channel.settimeout(REQUEST_TIMEOUT)
            message, fds = zygote.receive(self._channel)
        except (OSError, ValueError, EOFError) as exc:
            self._broken(f"unreadable start message: {exc}")
            return
        for extra in fds:
            os.close(extra)
        if message is None:
            self._broken(f"exited while importing{self._log_tail()}")
        elif not message.get("ready"):
            self._broken(str(message.get("error")))
        else:
            self.state, self.failures = "ready", 0
            self.folders = [str(f) for f in message.get("dirs", [])]
            threads = int(message.get("threads", 1))
            if threads > 1:
                log.warning(
                    "zygote_threads",
                    target=self.target,
                    threads=threads,
                    hint="a warm module started threads; forked steps do not get them",
                )
            log.info("zygote_ready", target=self.target, pid=self.pid, modules=list(self.modules))

    def _broken(self, why: str) -> None:
        self.close()
        self.state, self.error = "broken", why
        self.failures += 1
        self.retry_at = time.monotonic() + min(MAX_RESTART_PAUSE, 2.0 ** (self.failures - 1))
        log.warning("zygote_broken", target=self.target, error=why, failures=self.failures)

    def _log_tail(self) -> str:
        try:
            tail = self.log_path.read_bytes()[-2000:].decode(errors="replace").strip()
        except OSError:
            return ""
        return f": {tail.splitlines()[-1]}" if tail else ""


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def resident_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class WarmPool:
    """The zygotes of this process's warm compute targets.

    ``wait_for_start``: a step waits for a starting zygote (``pipesched run``: the zygote starts
    with the run); the daemon spawns instead, so a fire never waits on imports. ``watch_files``:
    watch the folders of the imported modules and retire a zygote whose files changed.
    """

    def __init__(
        self,
        targets: Mapping[str, tuple[str, ...]],
        *,
        env: Mapping[str, str],
        log_dir: Path,
        wait_for_start: bool,
        watch_files: bool,
        interpreter: str = sys.executable,
        key: str = "",
        preload: tuple[str, ...] = (),
    ) -> None:
        self.key = key  # what the pool was started for (the state directory)
        self._preload = preload
        self.targets = {name: tuple(modules) for name, modules in targets.items()}
        self.wait_for_start = wait_for_start
        self.interpreter = interpreter
        self.env = dict(env)
        self._startup = startup_variables(self.env)
        self.zygotes: dict[str, Zygote] = {}
        self.cold: dict[str, str] = {}  # target -> why it has no zygote
        self._watch = _ModuleWatch(self) if watch_files else None
        self.spawned: dict[str, int] = {}
        for name, listed in targets.items():
            learn_dir = log_dir / f"{name}.seen" if tuple(listed) == AUTO else None
            modules = learned_imports(log_dir, name) if learn_dir is not None else tuple(listed)
            if learn_dir is not None:  # learned, not listed: leave out what cannot be forked
                modules = tuple(m for m in modules if m not in fork_unsafe(modules))
            modules = (*preload, *(m for m in modules if m not in preload))
            unsafe = fork_unsafe(modules)
            if unsafe:
                module, why = next(iter(unsafe.items()))
                self.cold[name] = f"{module}: {why}"
                log.warning("warm_target_cold", target=name, module=module, reason=why)
                continue
            self.zygotes[name] = Zygote(
                target=name,
                interpreter=interpreter,
                modules=tuple(modules),
                env=self.env,
                log_path=log_dir / f"zygote-{name}.log",
                learn_dir=learn_dir,
            )
            if learn_dir is not None:
                create_private_dir(learn_dir)
        self._log_dir = log_dir

    def start(self) -> WarmPool:
        why = None if not self.zygotes else unsupported()
        if why is not None:
            for name in self.zygotes:
                self.cold[name] = why
                log.warning("warm_target_cold", target=name, reason=why)
            self.zygotes.clear()
        for zyg in self.zygotes.values():
            zyg.start()
        return self

    def check(self) -> None:
        """Notice deaths, readiness and changed files; restart what is due."""
        for zyg in self.zygotes.values():
            if zyg.learn_dir is not None:
                self._learn(zyg)
            state = zyg.poll()
            if state == "ready" and self._watch is not None:
                self._watch.follow(zyg)
            if zyg.due_for_restart():
                zyg.start()

    async def zygote_for(
        self, target: str, argv: Sequence[str], env: Mapping[str, str], warm: bool
    ) -> Zygote | None:
        """The zygote to fork this step from, or None to spawn it."""
        zyg = self.zygotes.get(target)
        if zyg is None or not warm or not argv or argv[0] != zyg.interpreter:
            return None
        if not step_program(argv) or startup_variables(env) != self._startup:
            return None
        self.check()
        if zyg.state == "starting" and self.wait_for_start:
            await zyg.wait_ready()
            if self._watch is not None and zyg.state == "ready":
                self._watch.follow(zyg)
        return zyg if zyg.state == "ready" else None

    def _learn(self, zyg: Zygote) -> None:
        """Fold what forked steps of an ``auto`` target noted into its learned imports; a zygote
        that lacks some of them is restarted with them."""
        assert zyg.learn_dir is not None
        seen: set[str] = set()
        try:
            notes = list(zyg.learn_dir.glob("*.json"))
        except OSError:
            return
        for note in notes:
            with contextlib.suppress(OSError, ValueError):
                names = json.loads(note.read_text())
                if isinstance(names, list):
                    seen.update(n for n in names if isinstance(n, str))
            with contextlib.suppress(OSError):
                note.unlink()
        if seen and record_imports(self._log_dir, zyg.target, seen) and not self.wait_for_start:
            # In the daemon, at once; a ``pipesched run`` keeps its zygote: the next run
            # starts with what this one learned.
            unsafe = fork_unsafe(learned_imports(self._log_dir, zyg.target))
            learned = [m for m in learned_imports(self._log_dir, zyg.target) if m not in unsafe]
            zyg.modules = (*self._preload, *(m for m in learned if m not in self._preload))
            zyg.mark_stale()

    def serves(self, key: object, targets: Mapping[str, Sequence[str]]) -> bool:
        """Started for ``key`` with (at least) these targets and modules."""
        return str(key) == self.key and all(
            self.targets.get(name) == tuple(modules) for name, modules in targets.items()
        )

    def count_spawned(self, target: str) -> None:
        self.spawned[target] = self.spawned.get(target, 0) + 1

    def describe(self) -> list[dict[str, Any]]:
        """Each warm target: its zygote's state, pid, memory and counts (for ``/metrics``, read
        from the API's threads: it only reads)."""
        rows: list[dict[str, Any]] = []
        for name, zyg in list(self.zygotes.items()):
            rows.append(
                {
                    "target": name,
                    "state": zyg.state,
                    "pid": zyg.pid,
                    "resident_bytes": zyg.resident_bytes(),
                    "forked": zyg.forks,
                    "spawned": self.spawned.get(name, 0),
                    "failures": zyg.failures,
                    "error": zyg.error,
                }
            )
        for name, why in self.cold.items():
            rows.append({"target": name, "state": "cold", "pid": None, "resident_bytes": None,
                         "forked": 0, "spawned": self.spawned.get(name, 0), "failures": 0,
                         "error": why})  # fmt: skip
        return rows

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()
        for zyg in self.zygotes.values():
            zyg.close()
            zyg.state = "stopped"


class _ModuleWatch:
    """Watches the folders a zygote's modules came from (each folder alone, not its subfolders):
    a module file created, changed, moved or deleted there retires the zygote."""

    def __init__(self, pool: WarmPool) -> None:
        self._pool = pool
        self._observer: Any = None
        self._followed: dict[str, int] = {}  # target -> pid whose folders are watched
        self._targets_by_folder: dict[str, set[str]] = {}

    def follow(self, zyg: Zygote) -> None:
        if self._followed.get(zyg.target) == zyg.pid:
            return
        from watchdog.events import FileSystemEventHandler  # lazy: only warm daemons watch
        from watchdog.observers import Observer  # lazy: only warm daemons watch

        watch = self

        class Changed(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed", "closed_no_write"):
                    return
                paths = [event.src_path, getattr(event, "dest_path", "")]
                if any(os.fsdecode(p).endswith(MODULE_SUFFIXES) for p in paths if p):
                    watch.changed(os.path.dirname(os.fsdecode(event.src_path)))

        if self._observer is None:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        handler = Changed()
        for folder in zyg.folders:
            targets = self._targets_by_folder.setdefault(folder, set())
            if not targets:
                with contextlib.suppress(OSError):
                    self._observer.schedule(handler, folder, recursive=False)
            targets.add(zyg.target)
        self._followed[zyg.target] = zyg.pid or 0

    def changed(self, folder: str) -> None:
        """Called on the observer's thread: only marks; the zygote is retired by ``check``."""
        for target in self._targets_by_folder.get(folder, ()):
            zyg = self._pool.zygotes.get(target)
            if zyg is not None:
                zyg.stale_requested = True

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None


_active: WarmPool | None = None


def activate(pool: WarmPool | None) -> None:
    """Make ``pool`` the one steps of this process fork from (None: spawn every step)."""
    global _active
    _active = pool


def active_pool() -> WarmPool | None:
    return _active
