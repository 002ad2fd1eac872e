"""Stand-ins for the Azure ML objects a pipeline notebook builds but pipesched has no use for —
run configurations, environments, base images — so that code moves over by changing its
imports. Each accepts Azure's arguments and attribute assignments; handing one to a step warns
once that it is ignored (``_warn``), never silently. Compute targets are in ``compute``.

Hand-written on purpose: no library models Azure ML's configuration objects, and these hold
nothing but the names a notebook sets.
"""

from __future__ import annotations

from typing import Any

from scheduler import __version__

VERSION = __version__
"""pipesched's version: notebooks print ``azureml.core.VERSION`` in their first cell."""

# Azure's default base images (``run_config.environment.docker.base_image = DEFAULT_CPU_IMAGE``).
# Accepted like every environment setting and never pulled: a step runs with the interpreter of
# its ``environment``.
DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04"


class _Anything:
    """Accepts any attribute read or write: ``run_config.environment.python.
    user_managed_dependencies = True`` must not fail."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _Anything()
        self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RunConfiguration(_Anything):
    """Azure's RunConfiguration: steps here run with the interpreter and variables of the step's
    ``environment`` (pipeline.yaml), so a runconfig is accepted and ignored."""

    def __init__(
        self,
        script: Any = None,
        arguments: Any = None,
        framework: Any = None,
        communicator: Any = None,
        conda_dependencies: Any = None,
        _history_enabled: Any = None,
        _path: Any = None,
        _name: Any = None,
        command: Any = None,
    ) -> None:
        super().__init__()
        self.environment = Environment("runconfig")


class Environment(_Anything):
    """Azure's Environment: here a step runs with pipesched's interpreter or the one named in the
    step's ``environment.python``; packages are installed by you, not per run."""

    def __init__(self, name: str = "environment", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    @classmethod
    def from_conda_specification(cls, name: str, file_path: str) -> Environment:
        return cls(name)

    @classmethod
    def from_pip_requirements(
        cls, name: str, file_path: str, pip_version: Any = None
    ) -> Environment:
        return cls(name)

    @classmethod
    def from_existing_conda_environment(cls, name: str, conda_environment_name: str) -> Environment:
        return cls(name)

    @classmethod
    def from_dockerfile(cls, name: str, dockerfile: Any, **kwargs: Any) -> Environment:
        return cls(name)

    @classmethod
    def get(cls, workspace: Any, name: str, version: Any = None, label: Any = None) -> Environment:
        return cls(name)

    def register(self, workspace: Any) -> Environment:
        return self


class CondaDependencies(_Anything):
    """Azure's CondaDependencies: accepted; install the packages into the step's interpreter."""

    @classmethod
    def create(cls, **kwargs: Any) -> CondaDependencies:
        return cls()

    def add_conda_package(self, conda_package: str) -> None: ...
    def add_pip_package(self, pip_package: str) -> None: ...


class MpiConfiguration(_Anything):
    """Azure's MPI job configuration: a step here is one process on its compute target, so the
    node and process counts are accepted and ignored (with a warning, by the step)."""

    def __init__(self, process_count_per_node: int = 1, node_count: int = 1) -> None:
        super().__init__(process_count_per_node=process_count_per_node, node_count=node_count)


class PyTorchConfiguration(MpiConfiguration):
    """Azure's PyTorch distributed configuration: as ``MpiConfiguration``."""


class TensorflowConfiguration(_Anything):
    """Azure's TensorFlow distributed configuration: as ``MpiConfiguration``."""

    def __init__(self, worker_count: int = 1, parameter_server_count: int = 1) -> None:
        super().__init__(worker_count=worker_count, parameter_server_count=parameter_server_count)


class ScriptRunConfig(_Anything):
    """Azure's ScriptRunConfig, as a ``CommandStep``'s ``runconfig``: the step takes its
    command (or ``script`` + ``arguments``), source directory and compute target from it. Its
    environment and distributed job configuration are accepted and ignored with a warning."""

    def __init__(
        self,
        source_directory: Any = None,
        script: str | None = None,
        arguments: list[Any] | None = None,
        run_config: Any = None,
        _telemetry_values: Any = None,
        compute_target: Any = None,
        environment: Any = None,
        distributed_job_config: Any = None,
        resume_from: Any = None,
        max_run_duration_seconds: int | None = None,
        command: str | list[Any] | None = None,
        docker_runtime_config: Any = None,
    ) -> None:
        super().__init__(
            source_directory=source_directory,
            script=script,
            arguments=list(arguments or []),
            run_config=run_config,
            compute_target=compute_target,
            environment=environment,
            distributed_job_config=distributed_job_config,
            max_run_duration_seconds=max_run_duration_seconds,
            command=command,
        )
