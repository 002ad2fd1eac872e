"""The lean check of the daemon config: the file's plain values, when the schema surely accepts
every one of them as it is, so that a read command builds its config without loading pydantic;
any doubt, and ``config.load_config``'s full check decides.
"""

from __future__ import annotations

from typing import Any

from scheduler.core.durations import parse_duration
from scheduler.core.secrets import has_secrets
from scheduler.definitions.config_types import ApiConfig, Config, is_module_name, parse_byte_count
from scheduler.definitions.operating import DEFAULT_RETENTION
from scheduler.definitions.yamlsource import YamlDocument

_DEFAULT_API: dict[str, Any] = {
    "host": ApiConfig.host,
    "port": ApiConfig.port,
    "tls": None,
    "allow_insecure_remote": ApiConfig.allow_insecure_remote,
    "max_body_bytes": ApiConfig.max_body_bytes,
    "max_upload_bytes": ApiConfig.max_upload_bytes,
}
_DEFAULT_LOGGING: dict[str, Any] = {"format": "auto", "level": "info"}
_LOG_FORMATS = frozenset({"auto", "console", "json"})
_LOG_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})


class _Unsure(Exception):
    """The lean check cannot vouch for a value: the full check decides."""


def plain_config(doc: YamlDocument) -> dict[str, Any] | None:
    """The file's values with the schema's defaults, shaped as ``ConfigFile.model_dump()``
    gives them, when every value is one the schema accepts as it is; None otherwise."""
    data = doc.data
    if not isinstance(data, dict):
        return None
    raw: dict[str, Any] = {
        "state_dir": None,
        "database": None,
        "pipelines_dir": "../pipelines",
        "schedules": "schedules.yaml",
        "datastores": {"default": {"path": None}},
        "compute": {
            "local": {"type": "local", "max_workers": None, "address": None, "warm_imports": None}
        },
        "max_concurrent_runs": 8,
        "shutdown_grace": 10.0,
        "api": dict(_DEFAULT_API),
        "logging": dict(_DEFAULT_LOGGING),
        "max_log_bytes": Config.max_log_bytes,
        "min_free_space": Config.min_free_space,
        "ha": dict(_DEFAULT_HA),
        "retention": dict(DEFAULT_RETENTION),
        "notify": [],
    }
    checks = {
        "state_dir": _optional_text,
        "database": _database_url,
        "pipelines_dir": _text,
        "schedules": _text,
        "datastores": lambda v: _named(v, _datastore),
        "compute": lambda v: _named(v, _compute),
        "max_concurrent_runs": lambda v: _count(v, 1),
        "shutdown_grace": _seconds,
        "api": _api,
        "logging": _logging,
        "max_log_bytes": lambda v: _bytes(v, 4096),
        "min_free_space": lambda v: _bytes(v, 0),
        "ha": _ha,
        "retention": _retention,
        "notify": _no_targets,
    }
    try:
        for key, value in data.items():
            check = checks.get(key) if isinstance(key, str) else None
            if check is None:
                raise _Unsure(key)
            raw[key] = check(value)
    except _Unsure:
        return None
    return raw


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Unsure(value)
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _database_url(value: Any) -> str | None:
    """Only SQLite URLs without secrets pass here; the full check asks SQLAlchemy about any
    other."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("sqlite:///") or has_secrets(value):
        raise _Unsure(value)
    return value


def _count(value: Any, minimum: int, maximum: int | None = None) -> int:
    if type(value) is not int or value < minimum or (maximum is not None and value > maximum):
        raise _Unsure(value)
    return value


def _bytes(value: Any, minimum: int) -> int:
    count = parse_byte_count(value) if isinstance(value, str) else value
    return _count(count, minimum)


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Unsure(value)
    try:
        return parse_duration(value)
    except ValueError:
        raise _Unsure(value) from None


def _section(value: Any, keys: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict) or not set(value) <= keys:
        raise _Unsure(value)
    return value


def _named(value: Any, entry: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(name, str) for name in value):
        raise _Unsure(value)
    return {name: None if item is None else entry(item) for name, item in value.items()}


def _datastore(value: Any) -> dict[str, Any]:
    section = _section(value, frozenset({"path"}))
    return {"path": _optional_text(section.get("path"))}


def _compute(value: Any) -> dict[str, Any]:
    section = _section(value, frozenset({"type", "max_workers", "address", "warm_imports"}))
    if section.get("type", "local") != "local":  # dask: the full check looks for Dask
        raise _Unsure(value)
    workers = section.get("max_workers")
    warm = section.get("warm_imports")
    if warm is not None and not (
        warm == "auto"
        or (isinstance(warm, list) and all(isinstance(m, str) and is_module_name(m) for m in warm))
    ):
        raise _Unsure(warm)
    return {
        "type": "local",
        "max_workers": None if workers is None else _count(workers, 1),
        "address": _optional_text(section.get("address")),
        "warm_imports": warm,
    }


def _api(value: Any) -> dict[str, Any]:
    section = _section(value, frozenset(_DEFAULT_API))
    api = dict(_DEFAULT_API)
    for key, item in section.items():
        if key == "host":
            api[key] = _text(item)
        elif key == "port":
            api[key] = _count(item, 0, 65535)
        elif key == "tls":
            if item is not None:  # its files must exist: the full check says which is missing
                raise _Unsure(item)
        elif key == "allow_insecure_remote":
            if type(item) is not bool:
                raise _Unsure(item)
            api[key] = item
        else:
            api[key] = _bytes(item, 1)
    return api


def _logging(value: Any) -> dict[str, Any]:
    section = _section(value, frozenset(_DEFAULT_LOGGING))
    logging = dict(_DEFAULT_LOGGING)
    for key, item in section.items():
        word = _text(item).lower()
        if word not in (_LOG_FORMATS if key == "format" else _LOG_LEVELS):
            raise _Unsure(item)
        logging[key] = word
    return logging


_DEFAULT_HA: dict[str, Any] = {"mode": "single", "lease": 10.0, "heartbeat": 2.0}


def _ha(value: Any) -> dict[str, Any]:
    section = _section(value, frozenset(_DEFAULT_HA))
    ha = dict(_DEFAULT_HA)
    for key, item in section.items():
        if key == "mode":
            if item not in ("single", "standby"):
                raise _Unsure(item)
            ha[key] = item
        else:
            seconds = _seconds(item)
            if not 0 < seconds <= 1800:
                raise _Unsure(item)
            ha[key] = seconds
    return ha


def _retention(value: Any) -> dict[str, Any]:
    section = _section(value, frozenset(DEFAULT_RETENTION))
    retention = dict(DEFAULT_RETENTION)
    for key, item in section.items():
        if item is None and key != "keep_last":
            retention[key] = None
        elif key == "runs":
            seconds = _seconds(item)
            if seconds <= 0:
                raise _Unsure(item)
            retention[key] = seconds
        elif key == "keep_last":
            retention[key] = _count(item, 0, 1_000_000)
        else:
            retention[key] = _bytes(item, 1)
    return retention


def _no_targets(value: Any) -> list[Any]:
    """An empty list passes here; any target is checked by the full schema."""
    if value not in (None, []):
        raise _Unsure(value)
    return []
