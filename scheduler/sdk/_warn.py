"""How the SDK treats Azure arguments that mean nothing here: accepted with a one-line warning
(once per class and argument, so a loop that builds 50 steps warns once), or refused with the
reason and the fix. Never silently dropped."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from types import FrameType

from scheduler.core.errors import PipeschedError

_SDK_DIR = str(Path(__file__).resolve().parent)

_warned: set[tuple[str, str]] = set()


class SdkError(PipeschedError):
    """The SDK cannot do what was asked."""


class IgnoredArgumentWarning(UserWarning):
    """An Azure ML argument that pipesched accepts but does not use."""


def ignored(owner: str, argument: str, reason: str, *, stacklevel: int | None = None) -> None:
    """Warn once per (owner, argument) that ``argument`` of ``owner`` is ignored, and why. The
    warning points at the user's line: the first frame outside this package."""
    key = (owner, argument)
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(
        f"{owner}: argument '{argument}' is ignored on pipesched ({reason})",
        IgnoredArgumentWarning,
        stacklevel=stacklevel or _user_stacklevel(),
    )


def _user_stacklevel() -> int:
    """How many frames up the caller outside scheduler/sdk is (3.11 has no
    ``skip_file_prefixes``)."""
    frame: FrameType | None = sys._getframe(2)  # the caller of ignored()
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_SDK_DIR):
        frame = frame.f_back
        level += 1
    return level


def ignore_given(owner: str, given: dict[str, object], reasons: dict[str, str]) -> None:
    """Warn for each argument in ``reasons`` whose value in ``given`` is not None/False/empty."""
    for argument, reason in reasons.items():
        value = given.get(argument)
        if value is None or value is False or value == [] or value == {}:
            continue
        ignored(owner, argument, reason)


def refused(owner: str, argument: str, reason: str, hint: str | None = None) -> SdkError:
    """The error for an Azure argument that cannot work here; the caller raises it."""
    return SdkError(
        f"{owner}: argument '{argument}' is not supported on pipesched: {reason}", hint=hint
    )


def reset_warnings() -> None:
    """Forget which warnings were shown (tests)."""
    _warned.clear()
