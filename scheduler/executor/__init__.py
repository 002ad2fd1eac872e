"""Walks a run's DAG and runs its steps; ``steps/`` holds one module per step type."""

from scheduler.executor.run import ExecutionOptions, RunExecutor, StepEvent

__all__ = ["ExecutionOptions", "RunExecutor", "StepEvent"]
