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

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scheduler.compute import reaper
from scheduler.compute.warm_learning import AUTO, learned_imports, record_imports
from scheduler.compute.warm_watch import ModuleWatch
from scheduler.compute.zygote_process import Zygote
from scheduler.core.lazylog import lazy_logger
from scheduler.store.private_files import create_private_dir

log = lazy_logger("scheduler.compute.warm")

#: Modules whose state does not survive ``fork``: a target listing one stays cold.
FORK_UNSAFE = {
    "torch": "CUDA cannot be initialised again in a forked child, and its thread pools are "
    "left locked",
    "tensorflow": "starts thread pools when imported; a forked child can deadlock on their locks",
    "jax": "multithreaded from import; a forked child can deadlock (JAX warns about os.fork)",
    "grpc": "channels made before a fork hang in the child unless fork support is enabled",
    "ray": "starts background threads and connects to its cluster when imported",
}


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
        self.cold: dict[str, str] = {}  # target -> why it has no zygote
        self.zygotes: dict[str, Zygote] = {}
        self._watch = ModuleWatch(self.zygotes) if watch_files else None
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


_active: WarmPool | None = None


def activate(pool: WarmPool | None) -> None:
    """Make ``pool`` the one steps of this process fork from (None: spawn every step)."""
    global _active
    _active = pool


def active_pool() -> WarmPool | None:
    return _active
