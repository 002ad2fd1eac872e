"""Azure ML SDK v1's DatabricksStep → a ``notebook``, ``python_script`` or ``command`` step:
what runs locally maps, what lives in a Databricks workspace is refused with the fix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from scheduler.sdk._warn import SdkError, ignore_given, refused
from scheduler.sdk.steps import (
    _COMMON_IGNORED,
    PipelineStep,
    _script_place,
)

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
            got = f"got {' and '.join(chosen)}" if chosen else "none was given"
            raise SdkError(
                f"{owner}: give exactly one of notebook_path, python_script_name, "
                f"python_script_path or main_class_name ({got})",
                hint="a notebook (notebook_path), a Python script (python_script_name in "
                "source_directory) or a Spark JAR job (main_class_name)",
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
