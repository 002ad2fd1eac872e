"""Azure ML SDK v1's pipeline steps, with Azure's signatures and defaults. Each constructor
records what maps onto a pipeline.yaml step (DESIGN), warns once for an argument that means
nothing here and refuses, with the reason, what cannot work. ``scheduler.sdk.build`` turns the
records into the YAML data; a step only remembers the user's line that made it.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, ClassVar

from scheduler.sdk._warn import ignore_given, refused
from scheduler.sdk.data import (
    DataInput,
    DataPath,
    DataReference,
    DatasetConsumptionConfig,
    FileDataset,
    OutputFileDatasetConfig,
    PipelineParameter,
    _Output,
    caller_position,
    resolve_path,
)

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
        value, PipelineParameter | DataPath | DataReference | FileDataset | DatasetConsumptionConfig
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

    _type: ClassVar[str] = ""

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
                variables.setdefault(f"AZUREML_DATAREFERENCE_{name}", f"${{{{parameters.{name}}}}}")
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
        if command is None or command == [] or command == "":
            raise refused(
                "CommandStep",
                "command",
                "a command is required (a runconfig's command is not read here)",
                hint="CommandStep(command=['Rscript', 'model.R', ...], ...)",
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


# -- ParallelRunStep ----------------------------------------------------------------------------


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
        for argument, value, reason in (
            ("allowed_failed_count", allowed_failed_count, "failures are counted per file"),
            ("allowed_failed_percent", allowed_failed_percent, "failures are counted per file"),
            ("partition_keys", partition_keys, "partitions are a tabular-dataset feature"),
        ):
            if value is not None:
                raise refused(owner, argument, reason, hint="use error_threshold (failed files)")
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

_CLUSTER = "steps run on the compute target configured in pipesched.yaml"
_LIBRARY = "install it into the step's interpreter (pip install ...) before the run"
_WORKSPACE_PREFIXES = ("/Users/", "/Shared/", "/Repos/", "dbfs:")


def _library_path(item: Any) -> str:
    return str(getattr(item, "library", item))


class DatabricksStep(PipelineStep):
    """A Databricks job run here: a local notebook (``type: notebook``), a Python script
    (``type: python_script``: pipesched's own interpreter and run context, where a bare
    ``python3`` might not be the venv's), or a JAR's main class (``type: command``). Cluster
    settings warn; what lives only in Databricks (workspace notebooks, dbfs: files) is refused
    with the fix."""

    def __init__(
        self,
        name: str,
        inputs: list[Any] | None = None,
        outputs: list[Any] | None = None,
        existing_cluster_id: str | None = None,
        spark_version: str | None = None,
        node_type: str | None = None,
        instance_pool_id: str | None = None,
        num_workers: int | None = None,
        min_workers: int | None = None,
        max_workers: int | None = None,
        spark_env_variables: dict[str, str] | None = None,
        spark_conf: dict[str, str] | None = None,
        init_scripts: list[str] | None = None,
        cluster_log_dbfs_path: str | None = None,
        notebook_path: str | None = None,
        notebook_params: dict[str, Any] | None = None,
        python_script_path: str | None = None,
        python_script_params: list[Any] | None = None,
        main_class_name: str | None = None,
        jar_params: list[Any] | None = None,
        python_script_name: str | None = None,
        source_directory: Any = None,
        hash_paths: list[str] | None = None,
        run_name: str | None = None,
        timeout_seconds: int | None = None,
        runconfig: Any = None,
        maven_libraries: list[Any] | None = None,
        pypi_libraries: list[Any] | None = None,
        egg_libraries: list[Any] | None = None,
        jar_libraries: list[Any] | None = None,
        rcran_libraries: list[Any] | None = None,
        compute_target: Any = None,
        allow_reuse: bool = True,
        version: str | None = None,
        permit_cluster_restart: bool | None = None,
    ) -> None:
        super().__init__(
            name,
            compute_target=compute_target,
            source_directory=source_directory,
            allow_reuse=allow_reuse,
            inputs=inputs,
            outputs=outputs,
        )
        owner = "DatabricksStep"
        cluster = dict(
            existing_cluster_id=existing_cluster_id,
            spark_version=spark_version,
            node_type=node_type,
            instance_pool_id=instance_pool_id,
            num_workers=num_workers,
            min_workers=min_workers,
            max_workers=max_workers,
            init_scripts=init_scripts,
            cluster_log_dbfs_path=cluster_log_dbfs_path,
            permit_cluster_restart=permit_cluster_restart,
        )
        given = {
            **cluster,
            "spark_conf": spark_conf,
            "run_name": run_name,
            "maven_libraries": maven_libraries,
            "pypi_libraries": pypi_libraries,
            "egg_libraries": egg_libraries,
            "rcran_libraries": rcran_libraries,
            "jar_libraries": jar_libraries if main_class_name is None else None,
            "runconfig": runconfig,
            "version": version,
            "hash_paths": hash_paths,
        }
        reasons = {
            **dict.fromkeys(cluster, _CLUSTER),
            "spark_conf": "no Spark cluster is started; pass --conf to spark-submit in a "
            "CommandStep",
            "run_name": "the step's name is its display name",
            **dict.fromkeys(
                ("maven_libraries", "pypi_libraries", "egg_libraries", "rcran_libraries"), _LIBRARY
            ),
            "jar_libraries": "jars are only used as the classpath of main_class_name",
            **_COMMON_IGNORED,
        }
        ignore_given(owner, given, reasons)
        kinds = {
            "notebook_path": notebook_path,
            "python_script_path": python_script_path,
            "python_script_name": python_script_name,
            "main_class_name": main_class_name,
        }
        chosen = [k for k, v in kinds.items() if v is not None]
        if len(chosen) != 1:
            raise refused(
                owner,
                "/".join(chosen) or "notebook_path",
                "give exactly one of notebook_path, python_script_path, python_script_name, "
                "main_class_name",
            )
        self._variables.update(spark_env_variables or {})
        self._timeout = float(timeout_seconds) if timeout_seconds is not None else None
        self._kind = chosen[0]
        self._params: Any = None
        if self._kind == "notebook_path":
            self._type = "notebook"
            self._target = self._local_notebook(str(notebook_path))
            self._params = dict(notebook_params or {})
        elif self._kind == "main_class_name":
            self._type = "command"
            self._target = str(main_class_name)
            self._classpath = self._jars(jar_libraries or [])
            self._params = self._scan_arguments(list(jar_params or []))
        else:
            self._type = "python_script"
            script = python_script_name or self._local_script(str(python_script_path))
            self._target, self._source_directory = _script_place(script, self._source_directory)
            self._params = self._scan_arguments(list(python_script_params or []))

    def _base(self) -> Path:
        return self._source_directory or self._cwd

    def _local_notebook(self, path: str) -> str:
        if os.path.isabs(path) and os.path.isfile(path) and self._source_directory is None:
            self._source_directory = Path(os.path.dirname(path))
            return os.path.basename(path)
        if path.endswith(".ipynb") and not path.startswith(_WORKSPACE_PREFIXES):
            return path
        exported = os.path.basename(path.rstrip("/")) + ".ipynb"
        if (self._base() / exported).is_file():
            return exported
        raise refused(
            "DatabricksStep",
            "notebook_path",
            f"{path!r} is a notebook in the Databricks workspace, which pipesched cannot reach",
            hint=f"export it as {exported} (File > Export > IPython Notebook) into "
            "source_directory and pass notebook_path='" + exported + "'",
        )

    def _local_script(self, path: str) -> str:
        if not path.startswith("dbfs:") and os.path.isfile(path):
            return os.path.abspath(path)
        raise refused(
            "DatabricksStep",
            "python_script_path",
            f"{path!r} lives in DBFS, which pipesched cannot reach",
            hint="copy the script into source_directory and pass python_script_name='SCRIPT.py'",
        )

    def _jars(self, libraries: list[Any]) -> str:
        jars = [_library_path(item) for item in libraries]
        remote = [j for j in jars if j.startswith("dbfs:") or "://" in j or not j.endswith(".jar")]
        if not jars or remote:
            raise refused(
                "DatabricksStep",
                "jar_libraries",
                "main_class_name needs local .jar files for its classpath"
                + (f" (not {', '.join(remote)})" if remote else ""),
                hint="copy the jars into source_directory and list them as 'lib/app.jar'",
            )
        return ":".join(jars)

    def _fields(self, r: Any) -> dict[str, Any]:
        if self._type == "notebook":
            parameters = {
                k: v if isinstance(v, str | int | float | bool) or v is None else r.text(v)
                for k, v in self._params.items()
            }
            return {"notebook": self._target, **({"parameters": parameters} if parameters else {})}
        if self._type == "command":
            argv = ["java", "-cp", self._classpath, self._target, *self._params]
            return {"command": [r.text(a) for a in argv]}
        out: dict[str, Any] = {"script": self._target}
        if self._params:
            out["arguments"] = [r.text(a) for a in self._params]
        return out

    def _read_values(self) -> list[Any]:
        values = list(self._params.values()) if isinstance(self._params, dict) else self._params
        return [*self._inputs, *values]


__all__ = [
    "CommandStep",
    "DataTransferStep",
    "DatabricksStep",
    "ParallelRunConfig",
    "ParallelRunStep",
    "PipelineStep",
    "PythonScriptStep",
    "compute_name",
]
