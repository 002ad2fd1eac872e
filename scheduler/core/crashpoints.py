"""Named crash points for the reliability tests.

``crashpoint("fire_claimed")`` kills this process with SIGKILL when the test variable
``PIPESCHED_TEST_CRASHPOINT`` names that point; otherwise it costs one dict lookup.
``PIPESCHED_TEST_CRASHPOINT=name@N`` crashes at the N-th pass (1-based).
"""

from __future__ import annotations

import os
import signal

_passes: dict[str, int] = {}


def crashpoint(name: str) -> None:
    wanted = os.environ.get("PIPESCHED_TEST_CRASHPOINT")
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
