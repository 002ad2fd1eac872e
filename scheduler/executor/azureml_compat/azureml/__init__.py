"""pipesched's stand-in for ``azureml`` in a pipeline step: imported only when the step's
environment has no Azure ML SDK of its own. The names it covers are in ``azureml.core``,
``azureml.data``, ``azureml.exceptions`` and ``azureml_user.parallel_run``."""

from __future__ import annotations

from typing import NoReturn

from . import _pipesched

PIPESCHED_STAND_IN = True


def __getattr__(name: str) -> NoReturn:
    _pipesched.module_getattr(__name__, name)
