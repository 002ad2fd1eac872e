"""What a step-type module receives to build its command."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.templating import substitute


@dataclass(frozen=True)
class StepInvocation:
    """One attempt of one step, with every ``${{...}}`` value known."""

    step: Any  # a scheduler.definitions step model
    interpreter: str
    workdir: Path
    values: Mapping[str, Mapping[str, str]]  # templating namespaces: parameters, data, run

    def sub(self, text: str) -> str:
        return substitute(text, self.values)
