"""Azure ML SDK v1's pipeline steps, with Azure's signatures and defaults. Each constructor
records what maps onto a pipeline.yaml step, warns once for an argument that means
nothing here and refuses, with the reason, what cannot work. ``scheduler.sdk.build`` turns the
records into the YAML data; a step only remembers the user's line that made it.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from scheduler.sdk._warn import ignore_given, refused
from scheduler.sdk.compat import ScriptRunConfig
from scheduler.sdk.data import DataInput, OutputFileDatasetConfig, PipelineParameter, _Output
from scheduler.sdk.datapath import DataPath, DataReference, caller_position, resolve_path
from scheduler.sdk.datasets import AbstractDataset, DatasetConsumptionConfig

_RUNCONFIG = "steps run with the interpreter and variables of their `environment`"
_COMMON_IGNORED = {
    "runconfig": _RUNCONFIG,
    "runconfig_pipeline_params": "node and process counts come from the compute target",
    "version": "steps are told apart by their content (reuse fingerprints)",
    "hash_paths": "reuse hashes the whole source directory",
}


def compute_name(target: Any, owner: str) -> str | None:
    """A compute target's name: a string, Azure's ``(name, type)`` tuple, or an object."""
    if target is None or isinstance(target, str):
        return target
    if isinstance(target, tuple) and target and isinstance(target[0], str):
        return target[0]
    name = getattr(target, "name", None)
    if isinstance(name, str):
        return name
    raise refused(owner, "compute_target", f"cannot tell the name of {type(target).__name__}")


def _is_parameter_like(value: Any) -> bool:
    if isinstance(value, tuple) and len(value) == 2:
        value = value[0]
    return isinstance(
        value,
        PipelineParameter | DataPath | DataReference | AbstractDataset | DatasetConsumptionConfig,
    )


def _is_data(value: Any) -> bool:
    return isinstance(value, _Output | DataInput)


def _output_of(value: Any) -> _Output | None:
    if isinstance(value, DataInput):
        return value.data
    return value if isinstance(value, _Output) else None


class PipelineStep:
    """What every step shares: display name, source directory, compute target, inputs and
    outputs, reuse, and where the user made it."""

    _type: str = ""  # the step type; a class default, which DatabricksStep sets per instance

    def __init__(
        self,
        name: str,
        *,
        compute_target: Any = None,
        source_directory: Any = None,
        allow_reuse: bool = True,
        inputs: list[Any] | None = None,
        outputs: list[Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        owner = type(self).__name__
        self.name = str(name)
        self._where = caller_position()
        self._cwd = Path(os.getcwd())
        self._compute = compute_name(compute_target, owner)
        self._source_directory = (
            resolve_path(source_directory) if source_directory is not None else None
        )
        self._allow_reuse = bool(allow_reuse)
        self._timeout: float | None = None
        self._inputs: list[Any] = []
        self._outputs: list[_Output] = []
        self._variables: dict[str, Any] = {}
        self._run_after: list[PipelineStep] = []
        for item in inputs or []:
            if not (_is_data(item) or _is_parameter_like(item)):
                raise refused(owner, "inputs", f"a {type(item).__name__} cannot be an input")
            self._inputs.append(item)
        for item in outputs or []:
            self._add_output(item, "outputs")
        for key, value in (params or {}).items():
            self._variables[f"AML_PARAMETER_{key}"] = value

    # -- Azure's step methods ------------------------------------------------------------------

    def run_after(self, step: PipelineStep) -> None:
        """Run after ``step`` even without data between them (``depends_on``)."""
        self._run_after.append(step)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -- for build --------------------------------------------------------------------------------

    def _add_output(self, item: Any, argument: str) -> None:
        data = _output_of(item)
        if data is None:
            raise refused(
                type(self).__name__,
                argument,
                f"a {type(item).__name__} cannot be an output",
                hint="use PipelineData or OutputFileDatasetConfig",
            )
        if data not in self._outputs:
            self._outputs.append(data)
        if self not in data._producers:
            data._producers.append(self)

    def _scan_arguments(self, arguments: list[Any]) -> list[Any]:
        """An OutputFileDatasetConfig passed as such in arguments is this step's output (as in
        Azure); anything else must be text or an SDK value."""
        for item in arguments:
            if isinstance(item, OutputFileDatasetConfig):
                self._add_output(item, "arguments")
            elif not (
                isinstance(item, str | int | float | bool)
                or _is_data(item)
                or _is_parameter_like(item)
            ):
                raise refused(
                    type(self).__name__, "arguments", f"a {type(item).__name__} is not an argument"
                )
        return list(arguments)

    def _fields(self, r: Any) -> dict[str, Any]:
        """The type's own fields (YAML data); ``r`` is build's resolver."""
        raise NotImplementedError

    def _default_directory(self) -> Path | None:
        return self._source_directory

    def _yaml(self, r: Any) -> dict[str, Any]:
        """The pipeline.yaml mapping of this step (only fields that differ from defaults)."""
        out: dict[str, Any] = {"type": self._type}
        step_id = r.step_id(self)
        if self.name != step_id:
            out["display_name"] = self.name
        source = r.source(self)
        if source is not None and source != ".":
            out["source_directory"] = source
        out.update(self._fields(r))
        inputs: list[str] = []
        variables = {k: r.text(v) for k, v in self._variables.items()}
        for item in self._inputs:
            if _is_data(item):
                inputs.append(r.data(item))
            else:  # Azure's own variable for an input, so the step references the parameter
                name = r.parameter(item)
                reference = f"${{{{parameters.{name}}}}}"
                variables.setdefault(f"AZUREML_DATAREFERENCE_{name}", reference)
                alias = item.name if isinstance(item, DatasetConsumptionConfig) else None
                if alias and alias != name:  # the name a step script reads it by
                    variables.setdefault(f"AZUREML_DATAREFERENCE_{alias}", reference)
        if inputs:
            out["inputs"] = list(dict.fromkeys(inputs))
        produced = [r.data(o) for o in self._outputs]
        if produced and self._lists_outputs():
            out["outputs"] = produced
        if self._run_after:
            out["depends_on"] = [r.step_id(s) for s in self._run_after]
        if self._compute and self._compute != "local":
            out["compute"] = self._compute
        if not self._allow_reuse:
            out["allow_reuse"] = False
        if self._timeout is not None:
            out["timeout"] = self._timeout
        if variables:
            out["environment"] = {"variables": variables}
        return out

    def _lists_outputs(self) -> bool:
        return True

    def _dependencies(self) -> list[PipelineStep]:
        """Steps this one needs in the pipeline: producers of what it reads, run_after."""
        needed = list(self._run_after)
        for item in self._read_values():
            data = _output_of(item)
            if data is not None:
                needed.extend(s for s in data._producers if s is not self)
        return needed

    def _read_values(self) -> list[Any]:
        return list(self._inputs)


def _script_place(script: str, directory: Path | None) -> tuple[str, Path | None]:
    """An absolute script path without a source directory: its folder becomes the source."""
    if directory is None and os.path.isabs(script):
        return os.path.basename(script), Path(os.path.dirname(script))
    return script, directory


class PythonScriptStep(PipelineStep):
    """Runs ``[python, script_name, *arguments]`` (``type: python_script``). ``params`` become
    ``AML_PARAMETER_<name>`` environment variables, as in Azure."""

    _type = "python_script"

    def __init__(
        self,
        script_name: str,
        name: str | None = None,
        arguments: list[Any] | None = None,
        compute_target: Any = None,
        runconfig: Any = None,
        runconfig_pipeline_params: Any = None,
        inputs: list[Any] | None = None,
        outputs: list[Any] | None = None,
        params: dict[str, Any] | None = None,
        source_directory: Any = None,
        allow_reuse: bool = True,
        version: str | None = None,
        hash_paths: list[str] | None = None,
    ) -> None:
        super().__init__(
            name or script_name,
            compute_target=compute_target,
            source_directory=source_directory,
            allow_reuse=allow_reuse,
            inputs=inputs,
            outputs=outputs,
            params=params,
        )
        ignore_given(
            "PythonScriptStep",
            {
                "runconfig": runconfig,
                "runconfig_pipeline_params": runconfig_pipeline_params,
                "version": version,
                "hash_paths": hash_paths,
            },
            _COMMON_IGNORED,
        )
        self._script, self._source_directory = _script_place(script_name, self._source_directory)
        self._arguments = self._scan_arguments(arguments or [])

    def _fields(self, r: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"script": self._script}
        if self._arguments:
            out["arguments"] = [r.text(a) for a in self._arguments]
        return out

    def _read_values(self) -> list[Any]:
        return [*self._inputs, *self._arguments]


class CommandStep(PipelineStep):
    """Runs an argv command (``type: command``); a string command is split like a shell line
    (``shlex.split``) but never run through a shell."""

    _type = "command"

    def __init__(
        self,
        command: str | list[Any] | None = None,
        name: str | None = None,
        compute_target: Any = None,
        runconfig: Any = None,
        runconfig_pipeline_params: Any = None,
        inputs: list[Any] | None = None,
        outputs: list[Any] | None = None,
        params: dict[str, Any] | None = None,
        source_directory: Any = None,
        allow_reuse: bool = True,
        version: str | None = None,
    ) -> None:
        if isinstance(runconfig, ScriptRunConfig):
            command, source_directory, compute_target = _from_script_run_config(
                runconfig, command, source_directory, compute_target
            )
            runconfig = None
        if command is None or command == [] or command == "":
            raise refused(
                "CommandStep",
                "command",
                "a command is required",
                hint="CommandStep(command=['Rscript', 'model.R', ...], ...), or "
                "runconfig=ScriptRunConfig(command=..., source_directory=...)",
            )
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        super().__init__(
            name or str(argv[0]),
            compute_target=compute_target,
            source_directory=source_directory,
            allow_reuse=allow_reuse,
            inputs=inputs,
            outputs=outputs,
            params=params,
        )
        ignore_given(
            "CommandStep",
            {
                "runconfig": runconfig,
                "runconfig_pipeline_params": runconfig_pipeline_params,
                "version": version,
            },
            _COMMON_IGNORED,
        )
        self._command = self._scan_arguments(argv)

    def _fields(self, r: Any) -> dict[str, Any]:
        return {"command": [r.text(a) for a in self._command]}

    def _read_values(self) -> list[Any]:
        return [*self._inputs, *self._command]


def _from_script_run_config(
    config: ScriptRunConfig, command: Any, source_directory: Any, compute_target: Any
) -> tuple[Any, Any, Any]:
    """A CommandStep's command, folder and target, each from its own argument when given, else
    from the ScriptRunConfig. Azure joins a list command with spaces into one line, so it is
    split as one here (never run through a shell); ``script`` + ``arguments`` run with the
    step's Python."""
    if command is None:
        if config.command:
            given = config.command
            command = given if isinstance(given, str) else " ".join(str(part) for part in given)
        elif config.script:
            command = ["python", config.script, *config.arguments]
    ignore_given(
        "ScriptRunConfig",
        {
            "environment": config.environment,
            "distributed_job_config": config.distributed_job_config,
            "max_run_duration_seconds": config.max_run_duration_seconds,
        },
        {
            "environment": "the step runs with the interpreter of its environment in pipeline.yaml",
            "distributed_job_config": "a step runs as one process on its compute target",
            "max_run_duration_seconds": "give the step a timeout in pipeline.yaml",
        },
    )
    return (
        command,
        source_directory if source_directory is not None else config.source_directory,
        compute_target if compute_target is not None else config.compute_target,
    )


class DataTransferStep(PipelineStep):
    """Copies a datastore folder or a data item into another (``type: data_transfer``)."""

    _type = "data_transfer"

    def __init__(
        self,
        name: str,
        source_data_reference: Any = None,
        destination_data_reference: Any = None,
        compute_target: Any = None,
        source_reference_type: str | None = None,
        destination_reference_type: str | None = None,
        allow_reuse: bool = True,
    ) -> None:
        super().__init__(name, allow_reuse=allow_reuse)
        ignore_given(
            "DataTransferStep",
            {
                "compute_target": compute_target,
                "source_reference_type": source_reference_type,
                "destination_reference_type": destination_reference_type,
            },
            {
                "compute_target": "copies run on the machine that holds the datastores",
                "source_reference_type": "files and folders are both copied",
                "destination_reference_type": "files and folders are both copied",
            },
        )
        for argument, value in (
            ("source_data_reference", source_data_reference),
            ("destination_data_reference", destination_data_reference),
        ):
            if value is None:
                raise refused("DataTransferStep", argument, "it is required here")
            if not (_is_data(value) or _is_parameter_like(value)):
                raise refused(
                    "DataTransferStep", argument, f"a {type(value).__name__} is not a location"
                )
        self._source = source_data_reference
        self._destination = destination_data_reference
        if _is_data(destination_data_reference):
            self._add_output(destination_data_reference, "destination_data_reference")

    def _fields(self, r: Any) -> dict[str, Any]:
        return {"source": r.location(self._source), "destination": r.location(self._destination)}

    def _lists_outputs(self) -> bool:
        return False  # the destination names the data it produces

    def _read_values(self) -> list[Any]:
        return [self._source]
