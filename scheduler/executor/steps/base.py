"""What a step-type module receives to build its command."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.definitions.templating import substitute

if TYPE_CHECKING:
    from scheduler.definitions.config import ComputeTarget, Config
    from scheduler.executor.workdir import AttemptPaths


@dataclass(frozen=True)
class StepInvocation:
    """One attempt of one step, with every ``${{...}}`` value known."""

    step: Any  # a scheduler.definitions step model
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
        return substitute(text, self.values)
