"""Running one pipeline run in the foreground of a process (``pipesched run``, the SDK's child):
SIGINT and SIGTERM cancel the run — its steps are stopped and the run recorded as canceled —
instead of killing the process. The run's store calls leave the loop (see ``RunExecutor``), so a
signal is handled at once even while a write waits on the database."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.executor import RunExecutor


def execute_in_foreground(executor: RunExecutor, early: list[str]) -> str:
    """Execute the run; ``early`` holds a cancel reason when a signal came before the loop
    started (the caller notes signals from the moment the run is recorded)."""
    return asyncio.run(_execute(executor, early))


async def _execute(executor: RunExecutor, early: list[str]) -> str:
    loop = asyncio.get_running_loop()
    # Signals only set state; the executor does the work in the loop.
    loop.add_signal_handler(signal.SIGINT, executor.cancel, "canceled by user")
    loop.add_signal_handler(signal.SIGTERM, executor.cancel, "terminated")
    if early:
        executor.cancel(early[0])
    return await executor.execute()
