"""The daemon config file's schema (pydantic), apart from ``config`` so that a command which only
needs the config's paths reads them without loading pydantic (``config.read_config``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from scheduler.core.durations import parse_duration
from scheduler.core.secrets import has_secrets
from scheduler.definitions.config import ApiConfig, Config, is_module_name, parse_byte_count
from scheduler.definitions.operating import DAY, NotifyEvent, NotifyTarget, notify_from
from scheduler.definitions.validation import user_error
from scheduler.definitions.yamlsource import PathKey


def _duration(value: Any) -> Any:
    return (
        parse_duration(value)
        if isinstance(value, str | int | float) and not isinstance(value, bool)
        else value
    )


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _byte_count(value: Any) -> Any:
    """``256MiB``, ``64 KiB``, ``1GB``, ``65536``: a number of bytes."""
    if isinstance(value, str):
        count = parse_byte_count(value)
        if count is not None:
            return count
        raise user_error(
            f"must be a size in bytes (got {value!r})",
            hint="e.g. 256MiB or 65536; units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB",
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _DatastoreFile(_Model):
    path: str | None = None


def _module_names(value: Any) -> Any:
    if isinstance(value, list):
        for name in value:
            if isinstance(name, str) and not is_module_name(name):
                raise user_error(
                    f"{name!r} is not a module name",
                    hint="list modules as you would import them, e.g. [pandas, sklearn.linear_model]",
                )
    return value


class _ComputeFile(_Model):
    type: Literal["local", "dask"] = "local"
    max_workers: int | None = Field(default=None, ge=1)
    address: str | None = None
    # Module names, or "auto": learned from what the target's steps imported.
    warm_imports: Annotated[list[str], BeforeValidator(_module_names)] | Literal["auto"] | None = (
        None
    )


_ApiBytes = Annotated[int, BeforeValidator(_byte_count), Field(ge=1)]


class _TlsFile(_Model):
    cert: str
    key: str


class _ApiFile(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8790, ge=0, le=65535)
    tls: _TlsFile | None = None
    allow_insecure_remote: bool = False
    max_body_bytes: _ApiBytes = ApiConfig.max_body_bytes
    max_upload_bytes: _ApiBytes = ApiConfig.max_upload_bytes


class _LoggingFile(_Model):
    format: Annotated[Literal["auto", "console", "json"], BeforeValidator(_lower)] = "auto"
    level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], BeforeValidator(_lower)
    ] = "info"


class _HaFile(_Model):
    mode: Literal["single", "standby"] = "single"
    lease: Annotated[float, BeforeValidator(_duration), Field(gt=0, le=3600)] = 10.0
    heartbeat: Annotated[float, BeforeValidator(_duration), Field(gt=0, le=1800)] = 2.0


class _RetentionFile(_Model):
    # None: no age limit (keep_last and max_state_bytes still apply).
    runs: Annotated[float, BeforeValidator(_duration), Field(gt=0)] | None = 90 * DAY
    keep_last: int = Field(default=20, ge=0, le=1_000_000)
    max_state_bytes: Annotated[int, BeforeValidator(_byte_count), Field(ge=1)] | None = None


class _NotifyFile(_Model):
    on: list[NotifyEvent] = Field(min_length=1)
    command: list[str] | None = Field(default=None, min_length=1)
    webhook: str | None = None
    secret: str | None = None
    timeout: Annotated[float, BeforeValidator(_duration), Field(gt=0, le=300)] = (
        NotifyTarget.timeout
    )
    retries: int = Field(default=NotifyTarget.retries, ge=0, le=100)

    @model_validator(mode="before")
    @classmethod
    def _on_key(cls, value: Any) -> Any:
        """YAML 1.1 reads a bare ``on:`` key as the boolean true; here it can only mean ``on``."""
        if isinstance(value, dict) and True in value and "on" not in value:
            return {("on" if key is True else key): item for key, item in value.items()}
        return value

    @field_validator("webhook")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "${{")):
            raise user_error(
                f"webhook must be an http:// or https:// URL (got {value[:80]!r})",
                hint="e.g. webhook: https://hooks.example.com/pipesched, or ${{env.HOOK_URL}}",
            )
        return value

    @model_validator(mode="after")
    def _one_destination(self) -> _NotifyFile:
        if (self.command is None) == (self.webhook is None):
            raise user_error(
                "a notify entry needs exactly one of command or webhook",
                hint="e.g. {on: [failed], command: [/usr/local/bin/page-me]} or "
                "{on: [failed], webhook: https://...}",
            )
        if self.secret is not None and self.webhook is None:
            raise user_error("secret signs webhook requests: it needs a webhook")
        return self


NotifyEntry = _NotifyFile
"""One ``notify:`` entry, as the config, a schedule and a pipeline each write it."""


def notify_targets(entries: list[_NotifyFile]) -> tuple[NotifyTarget, ...]:
    """The validated entries as the plain targets the daemon sends to."""
    return notify_from([entry.model_dump() for entry in entries])


def _default_datastores() -> dict[str, _DatastoreFile | None]:
    return {"default": _DatastoreFile()}


def _default_compute() -> dict[str, _ComputeFile | None]:
    return {"local": _ComputeFile()}


class ConfigFile(_Model):
    state_dir: str | None = None
    database: str | None = None
    pipelines_dir: str = "../pipelines"
    schedules: str = "schedules.yaml"
    datastores: dict[str, _DatastoreFile | None] = Field(default_factory=_default_datastores)
    compute: dict[str, _ComputeFile | None] = Field(default_factory=_default_compute)
    max_concurrent_runs: int = Field(default=8, ge=1)
    shutdown_grace: Annotated[float, BeforeValidator(_duration), Field(ge=0)] = 10.0
    api: _ApiFile = Field(default_factory=_ApiFile)
    logging: _LoggingFile = Field(default_factory=_LoggingFile)
    ha: _HaFile = Field(default_factory=_HaFile)
    retention: _RetentionFile = Field(default_factory=_RetentionFile)
    notify: list[_NotifyFile] | None = Field(default=None, max_length=100)
    # At least 4 KiB: the head, the marker line and the tail must fit.
    max_log_bytes: Annotated[int, BeforeValidator(_byte_count), Field(ge=4096)] = (
        Config.max_log_bytes
    )
    # 0 turns the check off.
    min_free_space: Annotated[int, BeforeValidator(_byte_count), Field(ge=0)] = (
        Config.min_free_space
    )

    @field_validator("database")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        # With secrets, the URL is checked once their values are filled in (config._build).
        if value is not None and not has_secrets(value):
            from sqlalchemy.engine import make_url

            try:
                make_url(value)
            except Exception as exc:  # sqlalchemy raises ArgumentError or ValueError
                raise ValueError(f"not a SQLAlchemy URL ({exc})") from None
        return value


def describe(path: PathKey) -> tuple[str, PathKey]:
    if len(path) >= 2 and path[0] == "datastores":
        return f"datastore '{path[1]}'", path[2:]
    if len(path) >= 2 and path[0] == "compute":
        return f"compute target '{path[1]}'", path[2:]
    return "the config", path
