"""Azure ML SDK v1's exception classes that step scripts catch."""

from __future__ import annotations

from typing import NoReturn

from .. import _pipesched


class AzureMLException(Exception):
    """Every error of the SDK. ``message`` is the text, as in Azure ML."""

    def __init__(self, exception_message: str = "", *args: object, **kwargs: object) -> None:
        super().__init__(exception_message, *args)
        self.message = exception_message


class UserErrorException(AzureMLException):
    """A mistake in how the SDK was called."""


class RunEnvironmentException(AzureMLException):
    """Not inside a run when one was needed."""


class WebserviceException(AzureMLException):
    """What Azure ML raises for model look-ups."""


class ModelNotFoundException(WebserviceException):
    """No model of that name (and version)."""


def __getattr__(name: str) -> NoReturn:
    _pipesched.module_getattr(__name__, name)
