"""Azure ML SDK v1's authoring API on pipesched: the same class names, argument names and call
shapes, so a notebook moves over by changing its imports and its workspace.

Names are imported on first use (PEP 562): ``import scheduler.sdk`` stays cheap, and a notebook
that only builds pipelines never loads the REST client or the store.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Workspace": "workspace",
    "Experiment": "workspace",
    "Datastore": "datastore",
    "Dataset": "datasets",
    "FileDataset": "datasets",
    "TabularDataset": "datasets",
    "DataType": "datasets",
    "DataPath": "datapath",
    "DataPathComputeBinding": "datapath",
    "DataReference": "datapath",
    "DatasetConsumptionConfig": "datasets",
    "PipelineData": "data",
    "PipelineParameter": "data",
    "OutputFileDatasetConfig": "data",
    "PythonScriptStep": "steps",
    "ParallelRunConfig": "parallel_step",
    "ParallelRunStep": "parallel_step",
    "DataTransferStep": "steps",
    "CommandStep": "steps",
    "DatabricksStep": "databricks_step",
    "Pipeline": "pipeline",
    "StepSequence": "sequence",
    "Model": "models",
    "PipelineRun": "runs",
    "StepRun": "runs",
    "StepRunOutput": "runs",
    "PortDataReference": "runs",
    "PipelineDraft": "drafts",
    "Module": "modules",
    "ModuleVersion": "modules",
    "ModuleVersionDescriptor": "modules",
    "ModuleStep": "modules",
    "InputPortDef": "modules",
    "OutputPortDef": "modules",
    "RunDetails": "widgets",
    "PublishedPipeline": "published",
    "PipelineEndpoint": "published",
    "Schedule": "schedule",
    "ScheduleRecurrence": "recurrence",
    "RunConfiguration": "compat",
    "ScriptRunConfig": "compat",
    "MpiConfiguration": "compat",
    "PyTorchConfiguration": "compat",
    "TensorflowConfiguration": "compat",
    "Environment": "compat",
    "CondaDependencies": "compat",
    "VERSION": "compat",
    "DEFAULT_CPU_IMAGE": "compat",
    "DEFAULT_GPU_IMAGE": "compat",
    "ComputeTarget": "compute",
    "AmlCompute": "compute",
    "ComputeTargetException": "compute",
    "AbstractAuthentication": "auth",
    "InteractiveLoginAuthentication": "auth",
    "ServicePrincipalAuthentication": "auth",
    "MsiAuthentication": "auth",
    "SdkError": "_warn",
    "IgnoredArgumentWarning": "_warn",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scheduler.sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"scheduler.sdk.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
