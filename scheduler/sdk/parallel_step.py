"""Azure ML SDK v1's ParallelRunConfig and ParallelRunStep → a ``parallel_run`` step.

The input is a file dataset (mini-batches of files) or a tabular dataset (mini-batches of rows:
``tabular:`` reading options, and ``run()`` gets DataFrames). ``partition_keys`` makes one
mini-batch per partition of a dataset made with ``partition_format`` (or ``partition_by``). A
``PipelineParameter`` as a setting becomes ``${{parameters.NAME}}`` in the definition, so a
submit can change it.
"""

from __future__ import annotations

import json
from typing import Any

from scheduler.sdk._warn import ignore_given, refused
from scheduler.sdk.data import PipelineParameter
from scheduler.sdk.datapath import resolve_path
from scheduler.sdk.datasets import AbstractDataset, DatasetConsumptionConfig, TabularDataset
from scheduler.sdk.steps import (
    PipelineStep,
    _is_data,
    _is_parameter_like,
    _script_place,
    compute_name,
)

_SIZE_UNITS = ("kb", "mb", "gb")


def _setting(value: Any, owner: str, argument: str, minimum: int) -> Any:
    """A number, or a PipelineParameter that a submit may set (kept as the parameter)."""
    if isinstance(value, PipelineParameter) or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refused(owner, argument, f"{value!r} is not a number")
    if value < minimum:
        raise refused(owner, argument, f"{value!r} is less than {minimum}")
    return value


def _mini_batch_size(value: Any) -> Any:
    """Azure's forms: files per mini-batch (an int or digits), or for tabular inputs a size
    (``"1MB"``); or a PipelineParameter. Digits become an int; a size stays text."""
    if value is None or isinstance(value, PipelineParameter):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and int(text) >= 1:
            return int(text)
        if text[-2:].lower() in _SIZE_UNITS and text[:-2].strip().isdigit():
            return text
    raise refused(
        "ParallelRunConfig",
        "mini_batch_size",
        f"{value!r} is neither a number of files nor a size such as 1MB",
        hint="mini_batch_size=10 (files per mini-batch), or '1MB' for a tabular dataset",
    )


def _partition_keys(value: Any) -> list[str]:
    """A list of keys; as a PipelineParameter, Azure's JSON text of the list (its default is
    used: partition keys shape the step)."""
    if isinstance(value, PipelineParameter):
        ignore_given(
            "ParallelRunConfig",
            {"partition_keys as a PipelineParameter": True},
            {
                "partition_keys as a PipelineParameter": "the keys shape the step: the default is used"
            },
        )
        value = value.default_value
        if isinstance(value, str):
            value = json.loads(value)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(k, str) for k in value):
        raise refused("ParallelRunConfig", "partition_keys", f"{value!r} is not a list of keys")
    return list(value)


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
                    "failures are counted per item (file, or record of a tabular dataset)",
                    hint="use error_threshold (failed items)",
                )
        if output_action not in ("append_row", "summary_only"):
            raise refused(
                owner,
                "output_action",
                f"{output_action!r} is not a known action",
                hint="append_row or summary_only",
            )
        self.partition_keys = _partition_keys(partition_keys) if partition_keys else []
        if self.partition_keys and mini_batch_size is not None:
            raise refused(
                owner,
                "mini_batch_size",
                "with partition_keys each partition is one mini-batch (Azure raises too)",
                hint="give either partition_keys or mini_batch_size",
            )
        directory = resolve_path(source_directory) if source_directory is not None else None
        self.entry_script, self.source_directory = _script_place(entry_script, directory)
        self.error_threshold = _setting(error_threshold, owner, "error_threshold", -1)
        self.output_action = output_action
        self.compute_target = compute_name(compute_target, owner)
        self.node_count = _setting(node_count, owner, "node_count", 1)
        self.process_count_per_node = _setting(
            process_count_per_node, owner, "process_count_per_node", 1
        )
        self.mini_batch_size = _mini_batch_size(mini_batch_size)
        self.run_invocation_timeout = _setting(
            run_invocation_timeout, owner, "run_invocation_timeout", 0
        )
        self.run_max_try = _setting(run_max_try, owner, "run_max_try", 1)
        self.append_row_file_name = append_row_file_name
        self.environment_variables = dict(environment_variables or {})


def _dataset_of(value: Any) -> Any:
    """The dataset behind a step input: itself, a named input's, or a parameter's default."""
    if isinstance(value, DatasetConsumptionConfig):
        value = value.dataset
    if isinstance(value, PipelineParameter):
        value = value.default_value
    return value


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
        self._check_input(config)
        self._config = config
        self._output = output
        if output is not None:
            self._add_output(output, "output")
        self._arguments = self._scan_arguments(arguments or [])
        self._variables.update(config.environment_variables)

    def _check_input(self, config: ParallelRunConfig) -> None:
        """What the input must be for the config: one path for a tabular dataset, no take/skip,
        a size only for rows, partition keys that the dataset's partition_format has."""
        dataset = _dataset_of(self._input)
        owner = "ParallelRunStep"
        if isinstance(dataset, TabularDataset):
            if dataset._datastore_uri() is None:
                raise refused(
                    owner,
                    "inputs",
                    "a tabular dataset over several paths cannot be one step input",
                    hint="put the files under one folder, or match them with one glob: "
                    "path=(datastore, 'folder/*.csv')",
                )
            if dataset._window:
                raise refused(
                    owner,
                    "inputs",
                    "take() and skip() apply to to_pandas_dataframe(), not to a step's input",
                    hint="pass the dataset itself and skip records in run()",
                )
        elif isinstance(config.mini_batch_size, str):
            raise refused(
                "ParallelRunConfig",
                "mini_batch_size",
                f"{config.mini_batch_size!r} is a size, for tabular datasets; this input is "
                "files, and a mini-batch of files is a number of them",
                hint="mini_batch_size=10 (files per mini-batch)",
            )
        if config.partition_keys:
            keys = dataset.partition_keys if isinstance(dataset, AbstractDataset) else []
            missing = [k for k in config.partition_keys if k not in keys]
            if missing:
                raise refused(
                    "ParallelRunConfig",
                    "partition_keys",
                    f"{missing} are not partition keys of the input "
                    f"({'its keys: ' + ', '.join(keys) if keys else 'it is not partitioned'})",
                    hint="make the input with partition_format=..., or with "
                    "dataset.partition_by(partition_keys=[...], target=...)",
                )

    def _fields(self, r: Any) -> dict[str, Any]:
        c = self._config
        out: dict[str, Any] = {"entry_script": c.entry_script, "input": r.text(self._input)}
        if self._output is not None:
            out["output"] = r.data(self._output)
        dataset = _dataset_of(self._input)
        if isinstance(dataset, TabularDataset):
            out["tabular"] = dataset._step_options()
        if isinstance(dataset, AbstractDataset) and dataset._partition_format:
            out["partition_format"] = dataset._partition_format
        if c.partition_keys:
            out["partition_keys"] = list(c.partition_keys)
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
            if isinstance(value, PipelineParameter):
                out[key] = r.text(value)  # ${{parameters.NAME}}: a submit may set it
            elif value != default:
                out[key] = value
        if self._arguments:
            out["arguments"] = [r.text(a) for a in self._arguments]
        return out

    def _lists_outputs(self) -> bool:
        return False  # ``output`` names it

    def _read_values(self) -> list[Any]:
        return [self._input, *self._inputs, *self._arguments]


# -- DatabricksStep -----------------------------------------------------------------------------
