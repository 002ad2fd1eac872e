"""What the stand-in's modules share: the step's context from the ``PIPESCHED_*`` variables, file
copying confined to a folder, and the messages for the names pipesched does not stand in for."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, NoReturn

ENV_MODELS_DIR = "PIPESCHED_MODELS_DIR"
ENV_DATASTORES = "PIPESCHED_DATASTORES"
ENV_OUTPUT_DATASETS = "PIPESCHED_OUTPUT_DATASETS"
DEFAULT_DATASTORE = "default"

COVERED = (
    "azureml.core's Run, Model, Dataset, Datastore, Workspace, Experiment and VERSION; "
    "azureml.data's FileDataset and TabularDataset; azureml.exceptions; "
    "azureml_user.parallel_run's EntryScript"
)
REAL_SDK_WINS = (
    "a real Azure ML SDK installed in the step's environment is always used before this stand-in"
)

# What to do instead, for the names a step script is most likely to reach for.
_REGISTER_MODEL = (
    "register the model from the notebook once the run has finished, with scheduler.sdk: "
    "Model.register(ws, model_path=<the step's output folder>, model_name=...)"
)
_REGISTERED_DATASET = (
    "give the dataset to the step as a named input (dataset.as_named_input('NAME') in the "
    "step's inputs) and read Run.get_context().input_datasets['NAME']"
)
_NO_CHILD_RUNS = "a pipesched step has no child runs: log to Run.get_context() itself"
ALTERNATIVES = {
    "Model.register": _REGISTER_MODEL,
    "Run.register_model": _REGISTER_MODEL,
    "Model.list": "list models outside the step: `pipesched models`, or Model.list(ws) "
    "with scheduler.sdk",
    "Dataset.get_by_name": _REGISTERED_DATASET,
    "Dataset.get_by_id": _REGISTERED_DATASET,
    "Dataset.get_all": _REGISTERED_DATASET,
    "FileDataset.register": "register datasets outside the step, with scheduler.sdk",
    "TabularDataset.register": "register datasets outside the step, with scheduler.sdk",
    "Run.child_run": _NO_CHILD_RUNS,
    "Run.submit_child": _NO_CHILD_RUNS,
    "Run.start_logging": _NO_CHILD_RUNS,
}
MODULE_ALTERNATIVES = {
    "azureml.train": "HyperDrive, AutoML and the estimators of azureml.train are Azure-only "
    "services; for a parameter sweep, submit the pipeline once per parameter set "
    "(pipeline_parameters)",
    "azureml.automl": "AutoML is an Azure-only service",
    "azureml.pipeline": "pipelines are built and submitted outside their steps, with "
    "scheduler.sdk (from scheduler.sdk import Pipeline, PythonScriptStep, ...)",
    "azureml.widgets": "RunDetails is for the notebook, outside the step: scheduler.sdk has it",
    "azureml.core.webservice": "deploying to Azure services is Azure-only",
    "azureml.core.compute": "a step's compute target is chosen outside the step "
    "(compute_target=...), with scheduler.sdk",
}


def not_available(what: str, alternative: str | None = None) -> str:
    return (
        f"{what} is not available in a pipesched step: "
        + (alternative or f"pipesched stands in for {COVERED}")
        + f" ({REAL_SDK_WINS})"
    )


def missing_module(fullname: str) -> str:
    """Why ``import <fullname>`` fails: the stand-in has no such module."""
    for prefix in sorted(MODULE_ALTERNATIVES, key=len, reverse=True):
        if fullname == prefix or fullname.startswith(prefix + "."):
            return not_available(f"module {fullname}", MODULE_ALTERNATIVES[prefix])
    return not_available(f"module {fullname}")


class NotAvailableInPipesched(ImportError):
    """``from azureml.core import X`` for an X the stand-in does not have. An ImportError, so
    that the message survives ``from ... import``, which turns an AttributeError into its own."""


def module_getattr(module: str, name: str) -> NoReturn:
    """A module's ``__getattr__``: private names stay plain AttributeErrors (probes such as
    ``hasattr(module, "__path__")`` rely on them), public ones say what to do."""
    if name.startswith("_"):
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    raise NotAvailableInPipesched(
        not_available(f"{module}.{name}", ALTERNATIVES.get(name)), name=module
    )


def attribute_error(owner: str, name: str) -> AttributeError:
    """An object's or class's missing attribute, explained."""
    if name.startswith("_"):
        return AttributeError(f"{owner!r} object has no attribute {name!r}")
    qualified = f"{owner}.{name}"
    return AttributeError(not_available(qualified, ALTERNATIVES.get(qualified)))


class Explaining(type):
    """Metaclass: ``Model.register`` (a missing class attribute) raises an explained
    AttributeError too, not only ``model.register``."""

    def __getattr__(cls, name: str) -> NoReturn:
        raise attribute_error(cls.__name__, name)


# -- the step's context ----------------------------------------------------------------------------


def json_mapping(variable: str) -> dict[str, str]:
    text = os.environ.get(variable)
    if not text:
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{variable} must hold a JSON object, not {text!r}")
    return {str(key): str(value) for key, value in data.items()}


def datastore_folders() -> dict[str, str]:
    return json_mapping(ENV_DATASTORES)


def output_folders() -> dict[str, str]:
    return json_mapping(ENV_OUTPUT_DATASETS)


def models_dir() -> str:
    """Where registered models live; ``azureml-models`` in the working directory (Azure's local
    cache) outside a pipeline step."""
    return os.environ.get(ENV_MODELS_DIR) or os.path.abspath("azureml-models")


# -- files -------------------------------------------------------------------------------------------


def confined(root: str, relative: str) -> str:
    """``root/relative``, refused when ``relative`` climbs out of ``root``."""
    root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root, relative.lstrip("/")))
    if target != root and not target.startswith(root + os.sep):
        raise ValueError(f"{relative!r} leads out of {root}")
    return target


def files_under(path: str) -> list[str]:
    """``path`` itself when it is a file, else every file below it, sorted."""
    if os.path.isfile(path):
        return [path]
    found = []
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        found += [os.path.join(folder, name) for name in sorted(names)]
    return found


def copy_file(source: str, target: str, overwrite: bool) -> bool:
    """Copy one file; False when ``target`` exists and ``overwrite`` is off (it is kept)."""
    if os.path.exists(target) and not overwrite:
        return False
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    shutil.copyfile(source, target)
    return True


def plain(value: Any) -> Any:
    """A JSON-able copy of tags and properties."""
    return json.loads(json.dumps(value, default=str))
