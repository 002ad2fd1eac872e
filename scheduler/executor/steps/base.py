"""What a step-type module receives to build its command: one attempt of one step, with every
``${{...}}`` value known."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from scheduler.definitions.config import ComputeTarget, Config
from scheduler.definitions.steps import StepBase
from scheduler.definitions.templating import substitute
from scheduler.executor.workdir import AttemptPaths

S_co = TypeVar("S_co", bound=StepBase, covariant=True)


@dataclass(frozen=True)
class StepInvocation(Generic[S_co]):
    """One attempt of one step, with every ``${{...}}`` value known. Parameterised by the step
    model, so that a step type's module reads its own fields with their types."""

    step: S_co
    interpreter: str
    workdir: Path
    values: Mapping[str, Mapping[str, str]]  # templating namespaces: parameters, data, run
    run_id: str = ""
    attempt: int = 1
    paths: AttemptPaths | None = None  # log, metrics, images, workdir of this attempt
    config: Config | None = None
    target: ComputeTarget | None = None  # the compute target the step runs on
    outputs: Mapping[str, str] | None = None  # data name -> folder this step writes

    def sub(self, text: str) -> str:
        """``text`` with every ``${{...}}`` reference replaced."""
        return substitute(text, self.values)
