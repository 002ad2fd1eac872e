"""``azureml.core`` for step scripts: the names Azure ML SDK v1's step scripts import from it.
Any other name raises an ImportError that says what to use instead."""

from __future__ import annotations

from typing import NoReturn

from .. import _pipesched
from .dataset import Dataset
from .datastore import Datastore
from .experiment import Experiment
from .model import Model
from .run import Run
from .workspace import Workspace

VERSION = "1.0.0+pipesched"
"""Not Azure ML's version: the local part says which stand-in this is."""

__all__ = ["VERSION", "Dataset", "Datastore", "Experiment", "Model", "Run", "Workspace"]


def __getattr__(name: str) -> NoReturn:
    _pipesched.module_getattr(__name__, name)
