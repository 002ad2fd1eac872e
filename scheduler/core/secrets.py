"""Secrets named in config and step fields: ``${{env.NAME}}`` and ``${{file:PATH}}``.

A reference is resolved only when its value is needed (a step starts, a webhook is sent, the store
is opened), so the value never reaches a definition, a run record or a log line; what is stored and
shown is the reference itself or ``***``. A relative ``PATH`` is read from systemd's
``$CREDENTIALS_DIRECTORY`` when it is set (``LoadCredential=``), else from ``base``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from scheduler.core.errors import PipeschedError

MASK = "***"
MAX_SECRET_FILE_BYTES = 64 * 1024  # a password or a key, not a data file
CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"
#: The variable through which a step's own runner process (sql, notebook, parallel_run, a Dask
#: launcher) receives the values of the references its spec file names: the file keeps the
#: references, so nothing under the state directory ever holds a value.
SECRETS_VARIABLE = "PIPESCHED_SECRETS"

_SECRET = re.compile(
    r"\$\{\{\s*(?:env\.(?P<env>[A-Za-z_][A-Za-z0-9_]*)|file:(?P<file>[^}]*?))\s*\}\}"
)


class SecretMissing(PipeschedError):
    """A secret reference could not be resolved."""


def has_secrets(text: str) -> bool:
    """True when ``text`` names at least one secret."""
    return "${{" in text and _SECRET.search(text) is not None


def secret_at(text: str, pos: int) -> int | None:
    """The end of the secret reference that starts at ``text[pos]``, or None when none does."""
    match = _SECRET.match(text, pos)
    return match.end() if match else None


def secret_references(text: str) -> list[str]:
    """Every secret reference in ``text``, as written (``${{env.DB_PASSWORD}}``)."""
    return [match.group(0) for match in _SECRET.finditer(text)]


def mask_secrets(text: str) -> str:
    """``text`` with each secret reference replaced by ``***``: what records and output show."""
    return _SECRET.sub(MASK, text) if "${{" in text else text


def resolve_secrets(
    text: str, *, environ: Mapping[str, str] | None = None, base: Path | None = None
) -> str:
    """``text`` with each secret reference replaced by its value; SecretMissing names the first
    reference that has none (never a value)."""
    if "${{" not in text:
        return text
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        if match.group("env") is not None:
            name = match.group("env")
            if name not in env:
                raise SecretMissing(
                    f"secret {match.group(0)}: the environment variable {name} is not set",
                    hint="export it where pipesched runs; for the daemon, EnvironmentFile= in "
                    "its systemd unit",
                )
            return env[name]
        return _read_secret_file(match.group("file").strip(), match.group(0), env, base)

    return _SECRET.sub(value, text)


def secret_file_path(
    written: str, *, environ: Mapping[str, str] | None = None, base: Path | None = None
) -> Path:
    """Where ``${{file:written}}`` reads from."""
    env = os.environ if environ is None else environ
    path = Path(os.path.expanduser(written))
    if path.is_absolute():
        return path
    credentials = env.get(CREDENTIALS_DIRECTORY)
    if credentials:
        return Path(credentials) / path
    return (base or Path.cwd()) / path


def _read_secret_file(
    written: str, reference: str, env: Mapping[str, str], base: Path | None
) -> str:
    if not written:
        raise SecretMissing(f"secret {reference}: no file named", hint="write ${{file:PATH}}")
    path = secret_file_path(written, environ=env, base=base)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretMissing(
            f"secret {reference}: cannot read {path} ({exc.strerror or exc})",
            hint="a relative path is read from $CREDENTIALS_DIRECTORY (LoadCredential= in the "
            "systemd unit) when it is set",
        ) from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretMissing(
            f"secret {reference}: {path} is larger than {MAX_SECRET_FILE_BYTES} bytes",
            hint="a secret file holds one value",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretMissing(f"secret {reference}: {path} is not UTF-8 text") from None
    # Files written by editors and `echo` end with a newline that is not part of the value.
    return text[:-1] if text.endswith("\n") else text


def resolve_references(
    references: Iterable[str],
    *,
    environ: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> dict[str, str]:
    """``{reference: value}`` for each reference; SecretMissing names the first without one."""
    return {ref: resolve_secrets(ref, environ=environ, base=base) for ref in references}


def references_in(value: Any) -> set[str]:
    """Every secret reference in the strings of a JSON-like value (dicts, lists, strings)."""
    found: set[str] = set()

    def collect(text: str) -> str:
        found.update(secret_references(text))
        return text

    _walk(value, collect)
    return found


def reveal(value: Any, values: Mapping[str, str]) -> Any:
    """A JSON-like value with each reference in its strings replaced from ``values`` (what
    ``resolve_references`` gave). A reference not there stays as written: text that reached a
    field from elsewhere (an experiment's name, a dropped file's) is never read as a secret."""

    def replace(text: str) -> str:
        if "${{" not in text:
            return text
        return _SECRET.sub(lambda m: values.get(m.group(0), m.group(0)), text)

    return _walk(value, replace)


def reveal_from_environment(value: Any) -> Any:
    """``reveal`` with the values the step's parent passed in ``$PIPESCHED_SECRETS``: how a runner
    process reads its spec file."""
    raw = os.environ.get(SECRETS_VARIABLE)
    values = json.loads(raw) if raw else {}
    return reveal(value, values if isinstance(values, dict) else {})


def _walk(value: Any, func: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return func(value)
    if isinstance(value, list):
        return [_walk(item, func) for item in value]
    if isinstance(value, dict):
        return {key: _walk(item, func) for key, item in value.items()}
    return value
