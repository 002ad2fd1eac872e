"""Azure ML SDK v1's ParallelRunConfig and ParallelRunStep → a ``parallel_run`` step."""

from __future__ import annotations

from typing import Any

from scheduler.sdk._warn import ignore_given, refused
from scheduler.sdk.data import PipelineParameter
from scheduler.sdk.datapath import resolve_path
from scheduler.sdk.steps import (
    PipelineStep,
    _is_data,
    _is_parameter_like,
    _script_place,
    compute_name,
)


def _fixed(value: Any, owner: str, argument: str) -> Any:
    """A PipelineParameter where the definition holds a fixed value: its default, with a
    warning (parallel_run settings are not run parameters here)."""
    if isinstance(value, PipelineParameter):
        ignore_given(
            owner,
            {f"{argument} as a PipelineParameter": True},
            {
                f"{argument} as a PipelineParameter": "it is fixed in the definition: the default is used"
            },
        )
        return value.default_value
    return value


def _mini_batch_size(value: Any) -> int | None:
    value = _fixed(value, "ParallelRunConfig", "mini_batch_size")
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise refused(
        "ParallelRunConfig",
        "mini_batch_size",
        f"{value!r} is a size for tabular datasets; here a mini-batch is a number of files",
        hint="mini_batch_size=10 (files per mini-batch)",
    )


class ParallelRunConfig:
    """The settings of a ParallelRunStep (``type: parallel_run``), under Azure's names."""

    def __init__(
        self,
        environment: Any,
        entry_script: str,
        error_threshold: int,
        output_action: str,
        compute_target: Any,
        node_count: int,
        process_count_per_node: int | None = None,
        mini_batch_size: Any = None,
        source_directory: Any = None,
        description: str | None = None,
        logging_level: str = "INFO",
        run_invocation_timeout: int = 60,
        run_max_try: int = 3,
        append_row_file_name: str | None = None,
        allowed_failed_count: int | None = None,
        allowed_failed_percent: float | None = None,
        partition_keys: list[str] | None = None,
        environment_variables: dict[str, str] | None = None,
    ) -> None:
        owner = "ParallelRunConfig"
        ignore_given(
            owner,
            {
                "environment": environment,
                "description": description,
                "logging_level": None if logging_level == "INFO" else logging_level,
            },
            {
                "environment": "the entry script runs with pipesched's interpreter",
                "description": "a step has a display name, not a description",
                "logging_level": "the entry script's output goes to the step log as it is",
            },
        )
        for argument, value in (
            ("allowed_failed_count", allowed_failed_count),
            ("allowed_failed_percent", allowed_failed_percent),
        ):
            if value is not None:
                raise refused(
                    owner,
                    argument,
                    "failures are counted per file",
                    hint="use error_threshold (failed files)",
                )
        if partition_keys is not None:
            raise refused(
                owner,
                "partition_keys",
                "mini-batches are groups of files, not partitions of a tabular dataset",
                hint="leave partition_keys out and give mini_batch_size (files per mini-batch)",
            )
        if output_action not in ("append_row", "summary_only"):
            raise refused(
                owner,
                "output_action",
                f"{output_action!r} is not a known action",
                hint="append_row or summary_only",
            )
        directory = resolve_path(source_directory) if source_directory is not None else None
        self.entry_script, self.source_directory = _script_place(entry_script, directory)
        self.error_threshold = int(_fixed(error_threshold, owner, "error_threshold"))
        self.output_action = output_action
        self.compute_target = compute_name(compute_target, owner)
        self.node_count = int(_fixed(node_count, owner, "node_count"))
        self.process_count_per_node = _fixed(
            process_count_per_node, owner, "process_count_per_node"
        )
        self.mini_batch_size = _mini_batch_size(mini_batch_size)
        self.run_invocation_timeout = _fixed(
            run_invocation_timeout, owner, "run_invocation_timeout"
        )
        self.run_max_try = int(_fixed(run_max_try, owner, "run_max_try"))
        self.append_row_file_name = append_row_file_name
        self.environment_variables = dict(environment_variables or {})


class ParallelRunStep(PipelineStep):
    """An entry script's ``init()`` and ``run(mini_batch)`` over the files of one input."""

    _type = "parallel_run"

    def __init__(
        self,
        name: str,
        parallel_run_config: ParallelRunConfig,
        inputs: list[Any],
        output: Any = None,
        side_inputs: list[Any] | None = None,
        arguments: list[Any] | None = None,
        allow_reuse: bool = True,
    ) -> None:
        config = parallel_run_config
        super().__init__(
            name,
            compute_target=config.compute_target,
            source_directory=config.source_directory,
            allow_reuse=allow_reuse,
            inputs=side_inputs,
        )
        if len(inputs or []) != 1:
            raise refused(
                "ParallelRunStep",
                "inputs",
                f"a parallel_run step reads one input folder (got {len(inputs or [])})",
                hint="put the files under one folder and pass one dataset",
            )
        (self._input,) = inputs
        if not (_is_data(self._input) or _is_parameter_like(self._input)):
            raise refused(
                "ParallelRunStep", "inputs", f"a {type(self._input).__name__} is not a folder"
            )
        self._config = config
        self._output = output
        if output is not None:
            self._add_output(output, "output")
        self._arguments = self._scan_arguments(arguments or [])
        self._variables.update(config.environment_variables)

    def _fields(self, r: Any) -> dict[str, Any]:
        c = self._config
        out: dict[str, Any] = {"entry_script": c.entry_script, "input": r.text(self._input)}
        if self._output is not None:
            out["output"] = r.data(self._output)
        for key, value, default in (
            ("mini_batch_size", c.mini_batch_size, None),
            ("error_threshold", c.error_threshold, -1),
            ("output_action", c.output_action, "append_row"),
            ("append_row_file_name", c.append_row_file_name, None),
            ("process_count_per_node", c.process_count_per_node, None),
            ("node_count", c.node_count, 1),
            ("run_invocation_timeout", c.run_invocation_timeout, 60),
            ("run_max_try", c.run_max_try, 3),
        ):
            if value != default:
                out[key] = value
        if self._arguments:
            out["arguments"] = [r.text(a) for a in self._arguments]
        return out

    def _lists_outputs(self) -> bool:
        return False  # ``output`` names it

    def _read_values(self) -> list[Any]:
        return [self._input, *self._inputs, *self._arguments]


# -- DatabricksStep -----------------------------------------------------------------------------
