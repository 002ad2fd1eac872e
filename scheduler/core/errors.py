"""The user-facing error types of pipesched.

A ``PipeschedError`` is something the user can fix: the CLI prints it as one line (or one line
per problem) and exits 1, without a traceback. Anything else escaping is a bug of ours. Each
class's docstring is its default message, after procrastinate's habit.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class PipeschedError(Exception):
    """pipesched could not do what was asked."""

    def __init__(self, message: str | None = None, *, hint: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.hint = hint
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


@dataclass(frozen=True)
class SourcePosition:
    """Where a YAML node starts: 1-based line and column, as editors count."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class DefinitionError(PipeschedError):
    """A definition file has a mistake."""

    def __init__(
        self,
        message: str | None = None,
        *,
        position: SourcePosition | None = None,
        file: Path | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.position = position
        self.file = position.file if position else file

    def __str__(self) -> str:
        text = f"error: {super().__str__()}"
        if self.position:
            return f"{self.position}: {text}"
        if self.file:
            return f"{self.file}: {text}"
        return text


class DefinitionErrors(PipeschedError):
    """Definition files have mistakes."""

    def __init__(self, errors: list[DefinitionError]) -> None:
        self.errors = sorted(errors, key=_error_order)
        count = len(self.errors)
        super().__init__(f"{count} error{'s' if count != 1 else ''}")

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def _error_order(error: DefinitionError) -> tuple[str, int, int]:
    pos = error.position
    return (str(error.file or ""), pos.line if pos else 0, pos.column if pos else 0)


class ConfigNotFound(PipeschedError):
    """No pipesched configuration file was found."""


class ParameterError(PipeschedError):
    """A run parameter is not valid."""

    def __init__(self, message: str | None = None, *, name: str, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.name = name


class PathOutsideDatastore(ParameterError):
    """The path leads outside its datastore."""


class NotFound(PipeschedError):
    """Nothing matches."""


class AmbiguousId(PipeschedError):
    """More than one run matches that id prefix."""


class StepTypeNotAvailable(PipeschedError):
    """This step type cannot run yet."""


def names_hint(wanted: str, known: Iterable[str], *, none: str = "there are none") -> str:
    """The hint of an unknown name: ``did you mean 'train'? known: prep, train`` when one name
    is close to the typo, else the names there are (``none`` when there are none)."""
    names = sorted(set(known))
    if not names:
        return none
    listed = f"known: {', '.join(names)}"
    close = difflib.get_close_matches(wanted, names, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'? {listed}" if close else listed
