"""Azure ML's ``StepSequence``: steps that must run in order though no data passes between them.
Each element is a step or a list of steps that run side by side; every step of an element runs
after every step of the element before it (``depends_on`` in pipeline.yaml)."""

from __future__ import annotations

from typing import Any

from scheduler.sdk.steps import PipelineStep


class StepSequence:
    def __init__(self, steps: list[Any] | None = None) -> None:
        self._groups: list[list[PipelineStep]] = [_group(element) for element in (steps or [])]
        for before, after in zip(self._groups, self._groups[1:], strict=False):
            for step in after:
                for prior in before:
                    if prior not in step._run_after:
                        step.run_after(prior)

    def steps(self) -> list[PipelineStep]:
        """Every step of the sequence, in order."""
        return [step for group in self._groups for step in group]

    def __repr__(self) -> str:
        return f"StepSequence({[[s.name for s in g] for g in self._groups]!r})"


def _group(element: Any) -> list[PipelineStep]:
    """A sequence element: one step, a list of steps, or a nested StepSequence."""
    if isinstance(element, StepSequence):
        return element.steps()
    items = list(element) if isinstance(element, list | tuple) else [element]
    for item in items:
        if not isinstance(item, PipelineStep):
            raise TypeError(
                f"StepSequence takes steps or lists of steps, not {type(item).__name__}"
            )
    return items


def flatten_steps(steps: Any) -> list[Any]:
    """``Pipeline(steps=...)``: a step, a StepSequence, or a list mixing steps and sequences."""
    if isinstance(steps, StepSequence | PipelineStep):
        steps = [steps]
    flat: list[Any] = []
    for item in steps:
        flat.extend(item.steps() if isinstance(item, StepSequence) else [item])
    return flat
