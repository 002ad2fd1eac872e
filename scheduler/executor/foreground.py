"""Running one pipeline run in the foreground of a process (``pipesched run``, the SDK's child):
SIGINT, SIGTERM and SIGHUP cancel the run — its steps are stopped and the run recorded as
canceled — instead of killing the process. SIGHUP is the terminal going away (its window closed,
the SSH connection dropped): the steps run in sessions of their own and would never hear of it,
so a run left to the default action (death) would stay ``running`` with nobody watching it. The
run's store calls leave the loop (see ``RunExecutor``), so a signal is handled at once even
while a write waits on the database."""

from __future__ import annotations

import asyncio
import signal
from typing import Protocol


class Executor(Protocol):
    """What runs in the foreground: ``RunExecutor``, or the lean path's ``ExpressExecutor``."""

    def cancel(self, reason: str = ...) -> None: ...

    async def execute(self) -> str: ...


#: The reason a run records for each signal that cancels it.
CANCEL_SIGNALS: dict[signal.Signals, str] = {
    signal.SIGINT: "canceled by user",
    signal.SIGTERM: "terminated",
    signal.SIGHUP: "terminal hung up",
}


def note_cancel_signals() -> list[str]:
    """From now until ``execute_in_foreground`` takes over, a cancel signal is noted (its
    reason appended to the list returned) instead of killing the process: call it before the
    run is recorded, so no signal can leave a recorded run behind."""
    early: list[str] = []
    for signum, reason in CANCEL_SIGNALS.items():
        signal.signal(signum, lambda *_, why=reason: early.append(why))
    return early


def execute_in_foreground(executor: Executor, early: list[str]) -> str:
    """Execute the run; ``early`` holds a cancel reason when a signal came before the loop
    started (the caller notes signals from the moment the run is recorded)."""
    return asyncio.run(_execute(executor, early))


async def _execute(executor: Executor, early: list[str]) -> str:
    loop = asyncio.get_running_loop()
    # Signals only set state; the executor does the work in the loop.
    for signum, reason in CANCEL_SIGNALS.items():
        loop.add_signal_handler(signum, executor.cancel, reason)
    if early:
        executor.cancel(early[0])
    return await executor.execute()
