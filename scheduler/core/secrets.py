"""Secrets named in config and step fields: ``${{env.NAME}}`` and ``${{file:PATH}}``.

A reference is resolved only when its value is needed (a step starts, a webhook is sent, the store
is opened), so the value never reaches a definition, a run record or a log line; what is stored and
shown is the reference itself or ``***``. A relative ``PATH`` is read from systemd's
``$CREDENTIALS_DIRECTORY`` when it is set (``LoadCredential=``), else from ``base``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from scheduler.core.errors import PipeschedError

MASK = "***"
MAX_SECRET_FILE_BYTES = 64 * 1024  # a password or a key, not a data file
CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"

_SECRET = re.compile(
    r"\$\{\{\s*(?:env\.(?P<env>[A-Za-z_][A-Za-z0-9_]*)|file:(?P<file>[^}]*?))\s*\}\}"
)


class SecretMissing(PipeschedError):
    """A secret reference could not be resolved."""


def has_secrets(text: str) -> bool:
    """True when ``text`` names at least one secret."""
    return "${{" in text and _SECRET.search(text) is not None


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
                    hint="set it in the daemon's environment (EnvironmentFile= in the systemd unit)",
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
