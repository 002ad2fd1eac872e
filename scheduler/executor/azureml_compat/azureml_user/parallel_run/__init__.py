"""``EntryScript`` for ParallelRunStep entry scripts: one per worker process, with a ``logger``
whose lines land in the worker's log, and the folders Azure ML names."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, NoReturn

LOG_FORMAT = "%(asctime)s|%(name)s|%(levelname)s|%(process)d|%(funcName)s()|%(message)s"


class EntryScript:
    """The entry script's helper. ``EntryScript()`` gives the same object every time in a
    process, as in Azure ML."""

    _instance: EntryScript | None = None
    _logger: logging.Logger | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> EntryScript:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __init__(self, logging_level: int | str | None = None) -> None:
        if logging_level is not None:
            self.logging_level = logging_level
        elif not hasattr(self, "logging_level"):
            self.logging_level = logging.INFO

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, ())

    @property
    def logger(self) -> logging.Logger:
        """A logger whose lines go to the worker's log (``pipesched logs`` shows them)."""
        if self._logger is None:
            logger = logging.getLogger("ParallelRunStep.EntryScript")
            logger.setLevel(logging.DEBUG)
            logger.propagate = False
            handler = logging.StreamHandler(sys.stderr)
            handler.setLevel(self.logging_level)
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
            logger.addHandler(handler)
            self._logger = logger
        return self._logger

    @property
    def working_dir(self) -> str:
        """The step attempt's working directory."""
        return os.getcwd()

    @property
    def log_dir(self) -> str:
        """A folder for the entry script's own log files, in the working directory."""
        folder = os.path.join(self.working_dir, "logs", "user")
        os.makedirs(folder, exist_ok=True)
        return folder

    @property
    def output_dir(self) -> str:
        """The step's output folder (where ``append_row`` writes its file); ``outputs/`` in the
        working directory for a step without one."""
        outputs = _output_folders()
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        folder = os.path.join(self.working_dir, "outputs")
        os.makedirs(folder, exist_ok=True)
        return folder

    @property
    def agent_name(self) -> str:
        """A name of this worker process, unique in the step: for file names of its own."""
        return f"process{os.getpid()}"

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("_"):
            raise AttributeError(f"'EntryScript' object has no attribute {name!r}")
        raise AttributeError(
            f"EntryScript.{name} is not available in a pipesched step: pipesched's EntryScript "
            "has logger, working_dir, log_dir, output_dir and agent_name (a real azureml_user "
            "package in the step's environment is always used before this stand-in)"
        )


def _output_folders() -> dict[str, str]:
    """The step's outputs, name → folder (standalone: a real azureml may be installed beside)."""
    data = json.loads(os.environ.get("PIPESCHED_OUTPUT_DATASETS") or "{}")
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
