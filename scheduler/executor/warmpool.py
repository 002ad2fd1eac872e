"""Which compute targets are warm, and the zygote pool of this process: started by the daemon
for all of them, and by ``pipesched run`` only where it pays (``foreground_targets``)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler.compute.local import step_environment
from scheduler.compute.warm import WarmPool, activate, active_pool
from scheduler.executor.stepenv import zygote_variables
from scheduler.store.private_files import create_private_dir

if TYPE_CHECKING:  # the compiled path of ``pipesched run`` starts pools without pydantic
    from scheduler.definitions.config import ComputeTarget, Config
    from scheduler.definitions.pipeline import Pipeline


def warm_targets(compute: Mapping[str, ComputeTarget]) -> dict[str, tuple[str, ...]]:
    """Local targets that list ``warm_imports``, with their modules (``("auto",)`` unresolved)."""
    return {
        name: target.warm_imports
        for name, target in compute.items()
        if target.type == "local" and target.warm_imports is not None
    }


#: Imported by every zygote besides its target's list: the runtime most steps import, and the
#: parallel_run driver (standard library only, both), which then starts without imports.
PRELOADED = ("scheduler.runtime", "scheduler.executor.parallel.driver")

#: ``pipesched run`` starts a zygote for a target only when this many of the run's steps would
#: be forked on it (one step pays the zygote's imports just as it would pay its own).
MIN_FOREGROUND_STEPS = 2
_owner = "none"  # "daemon": the pool was started for the daemon's life; never replaced per run


def ensure_pool(config: Config, pipeline: Pipeline) -> None:
    """Before a run outside the daemon: the pool for ``config``'s warm targets that this run
    would fork enough steps on, started (and waited for at the first step) if not running yet.
    In the daemon the pool is started once, with the daemon (``start_warm_pool``)."""
    steps = [(s.type, s.compute, s.warm, s.environment.python) for s in pipeline.steps.values()]
    ensure_foreground_pool(warm_targets(config.compute), steps, config.state_dir)


def ensure_foreground_pool(
    targets: Mapping[str, Sequence[str]],
    steps: Iterable[tuple[str, str, bool, str | None]],
    state_dir: Path,
) -> None:
    """``ensure_pool`` from the parts a compiled plan holds."""
    if _owner == "daemon":
        return
    wanted = foreground_targets(steps, targets) if targets else {}
    pool = active_pool()
    if pool is not None and wanted and pool.serves(state_dir, wanted):
        return
    stop_warm_pool()  # a pool of another config's targets forks nothing of this run
    if not wanted:
        return
    start_warm_pool(wanted, state_dir, wait_for_start=True, watch_files=False)


def start_warm_pool(
    targets: Mapping[str, Sequence[str]],
    state_dir: Path,
    *,
    wait_for_start: bool,
    watch_files: bool,
    for_daemon: bool = False,
) -> WarmPool | None:
    """Start a zygote per target and make the pool this process's; None when no target is warm."""
    global _owner
    if not targets:
        return None
    _owner = "daemon" if for_daemon else "run"
    folder = state_dir / "warm"
    create_private_dir(folder)
    env = step_environment(zygote_variables(sys.executable, state_dir))
    pool = WarmPool(
        {name: tuple(modules) for name, modules in targets.items()},
        env=env,
        log_dir=folder,
        wait_for_start=wait_for_start,
        watch_files=watch_files,
        key=str(state_dir),
        preload=PRELOADED,
    ).start()
    activate(pool)
    return pool


def stop_warm_pool() -> None:
    global _owner
    _owner = "none"
    pool = active_pool()
    activate(None)
    if pool is not None:
        pool.close()


def foreground_targets(
    steps: Iterable[tuple[str, str, bool, str | None]], targets: Mapping[str, Sequence[str]]
) -> dict[str, Sequence[str]]:
    """The warm targets worth a zygote in ``pipesched run``: those that at least two of the
    run's steps would be forked on (``MIN_FOREGROUND_STEPS``). Steps are ``(type, compute, warm,
    python)``."""
    counts: dict[str, int] = {}
    for step_type, compute, warm, python in steps:
        if compute in targets and warm and python is None and step_type != "command":
            counts[compute] = counts.get(compute, 0) + 1
    return {name: targets[name] for name, count in counts.items() if count >= MIN_FOREGROUND_STEPS}


ZYGOTE_CHECK_INTERVAL = 2.0  # seconds between the daemon's looks at its zygotes


async def watch_zygotes(pool: WarmPool, stop: asyncio.Event) -> None:
    """In the daemon: a zygote that died, broke or went stale is restarted even while no step
    asks for it, so the next step finds it ready."""
    while not stop.is_set():
        pool.check()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ZYGOTE_CHECK_INTERVAL)
