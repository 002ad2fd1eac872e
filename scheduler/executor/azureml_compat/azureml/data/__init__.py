"""``azureml.data`` for step scripts: the dataset classes, for ``isinstance`` checks and type
hints."""

from __future__ import annotations

from typing import NoReturn

from .. import _pipesched
from ..core.dataset import FileDataset, TabularDataset

__all__ = ["FileDataset", "TabularDataset"]


def __getattr__(name: str) -> NoReturn:
    _pipesched.module_getattr(__name__, name)
