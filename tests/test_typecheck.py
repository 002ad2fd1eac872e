"""The type checker over the whole ``scheduler`` package, as pyproject.toml's ``[tool.mypy]``
configures it (strict for core, triggers, dispatch, fires and store): a type error fails the suite,
and so CI, with mypy's own report in the failure."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cache_dir() -> Path:
    """A cache outside the checkout, one per checkout: a second run takes seconds, not the
    cold run's twenty or so, and two checkouts never read each other's results."""
    key = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"pipesched-mypy-{key}"


def test_mypy_finds_no_type_error() -> None:
    pytest.importorskip("mypy", reason="mypy is in the [dev] extra")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(_cache_dir())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"mypy scheduler found type errors:\n{report}"
