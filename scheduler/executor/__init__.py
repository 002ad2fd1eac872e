"""Walks a run's DAG and runs its steps; ``steps/`` holds one module per step type.

The names below load on first use: step runners (``python -m scheduler.executor.runners.X``)
import this package too, and must not pay for the store and SQLAlchemy that ``run.py`` needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded on first use, below
    from scheduler.executor.run import ExecutionOptions, RunExecutor, StepEvent

__all__ = ["ExecutionOptions", "RunExecutor", "StepEvent"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        # lazy: step runners import this package and must not load the store and SQLAlchemy.
        from scheduler.executor import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
