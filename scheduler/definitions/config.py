"""The daemon config (``config/pipesched.yaml``): found, validated, paths resolved.

Loading has no side effects — it creates no directory and opens no database — so ``validate`` and
every CLI command can load it freely; the executor and the store create what they need.
Paths in the file are relative to the file itself.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from scheduler.core.durations import parse_duration
from scheduler.core.errors import ConfigNotFound, DefinitionError, DefinitionErrors
from scheduler.definitions.validation import convert, user_error
from scheduler.definitions.yamlsource import PathKey, YamlDocument, read_yaml

ENV_CONFIG = "PIPESCHED_CONFIG"
DEFAULT_LOCATIONS = (Path("config/pipesched.yaml"), Path("/etc/pipesched/pipesched.yaml"))


@dataclass(frozen=True)
class Datastore:
    """A named folder that holds data; paths inside it are confined to it."""

    name: str
    path: Path


@dataclass(frozen=True)
class ComputeTarget:
    """Where steps run: local processes, or a Dask cluster at ``address``."""

    name: str
    type: Literal["local", "dask"]
    max_workers: int
    address: str | None = None


@dataclass(frozen=True)
class TlsConfig:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8790
    tls: TlsConfig | None = None
    allow_insecure_remote: bool = False
    max_body_bytes: int = 1024 * 1024  # a JSON request body
    max_upload_bytes: int = 200 * 1024 * 1024  # a streamed snapshot or datastore upload


@dataclass(frozen=True)
class LoggingConfig:
    format: Literal["auto", "console", "json"] = "auto"
    level: Literal["debug", "info", "warning", "error", "critical"] = "info"


@dataclass(frozen=True)
class Config:
    """A loaded, validated daemon config; every path absolute."""

    file: Path
    state_dir: Path
    database_url: str
    pipelines_dir: Path
    schedules_file: Path
    datastores: dict[str, Datastore]
    compute: dict[str, ComputeTarget]
    max_concurrent_runs: int = 8
    shutdown_grace: float = 10.0
    api: ApiConfig = field(default_factory=ApiConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    max_log_bytes: int = 256 * 1024**2  # per step attempt: head and tail kept, a marker between
    min_free_space: int = 1024**3  # below it on the state directory's filesystem, no run starts

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def default_datastore(self) -> Datastore:
        return self.datastores["default"]


# -- the file's schema --------------------------------------------------------------------------


def _duration(value: Any) -> Any:
    return (
        parse_duration(value)
        if isinstance(value, str | int | float) and not isinstance(value, bool)
        else value
    )


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_BYTE_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def _byte_count(value: Any) -> Any:
    """``256MiB``, ``64 KiB``, ``1GB``, ``65536``: a number of bytes."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", value)
        if match and match.group(2).lower() in _BYTE_UNITS:
            return int(match.group(1)) * _BYTE_UNITS[match.group(2).lower()]
        raise user_error(
            f"must be a size in bytes (got {value!r})",
            hint="e.g. 256MiB or 65536; units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB",
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _DatastoreFile(_Model):
    path: str | None = None


class _ComputeFile(_Model):
    type: Literal["local", "dask"] = "local"
    max_workers: int | None = Field(default=None, ge=1)
    address: str | None = None


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


def _default_datastores() -> dict[str, _DatastoreFile | None]:
    return {"default": _DatastoreFile()}


def _default_compute() -> dict[str, _ComputeFile | None]:
    return {"local": _ComputeFile()}


class _ConfigFile(_Model):
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
        if value is not None:
            from sqlalchemy.engine import make_url

            try:
                make_url(value)
            except Exception as exc:  # sqlalchemy raises ArgumentError or ValueError
                raise ValueError(f"not a SQLAlchemy URL ({exc})") from None
        return value


def _describe(path: PathKey) -> tuple[str, PathKey]:
    if len(path) >= 2 and path[0] == "datastores":
        return f"datastore '{path[1]}'", path[2:]
    if len(path) >= 2 and path[0] == "compute":
        return f"compute target '{path[1]}'", path[2:]
    return "the config", path


# -- finding and loading ------------------------------------------------------------------------


def find_config(explicit: str | os.PathLike[str] | None) -> Path:
    """The config file to use: ``-c``, else $PIPESCHED_CONFIG, else ./config/pipesched.yaml,
    else /etc/pipesched/pipesched.yaml."""
    for source, value in (("-c", explicit), (ENV_CONFIG, os.environ.get(ENV_CONFIG))):
        if value:
            path = Path(value)
            if not path.is_file():
                raise ConfigNotFound(f"config file {path} ({source}) does not exist")
            return Path(os.path.abspath(path))
    for path in DEFAULT_LOCATIONS:
        try:
            found = path.is_file()
        except OSError:  # e.g. the current directory is not readable: not there
            found = False
        if found:
            return Path(os.path.abspath(path))
    looked = ", ".join(str(p) for p in DEFAULT_LOCATIONS)
    raise ConfigNotFound(
        f"no config file found (looked in {looked})",
        hint=f"pass -c PATH or set {ENV_CONFIG}",
    )


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate a config file; raise DefinitionErrors with every mistake in it."""
    file = Path(os.path.abspath(path))
    if not file.is_file():
        raise ConfigNotFound(f"config file {path} does not exist", hint="pass -c PATH")
    doc = read_yaml(file)
    errors: list[DefinitionError] = list(doc.errors)
    try:
        raw: _ConfigFile | None = _ConfigFile.model_validate(doc.data)
    except ValidationError as exc:
        errors.extend(convert(err, _ConfigFile, doc, (), _describe) for err in exc.errors())
        # Check the sections that are fine as well, so every mistake shows at once.
        bad = {err["loc"][0] for err in exc.errors() if err["loc"]}
        try:
            raw = _ConfigFile.model_validate({k: v for k, v in doc.data.items() if k not in bad})
        except ValidationError:
            raw = None
    config = _build(raw, file, doc, errors) if raw is not None else None
    if errors or config is None:
        raise DefinitionErrors(errors)
    return config


def _build(
    raw: _ConfigFile, file: Path, doc: YamlDocument, errors: list[DefinitionError]
) -> Config:
    base = file.parent

    def resolve(value: str | os.PathLike[str]) -> Path:
        return Path(os.path.normpath(base / os.path.expanduser(value)))

    if raw.state_dir is not None:
        state_dir = resolve(raw.state_dir)
    elif os.environ.get("STATE_DIRECTORY"):
        # systemd sets a colon-separated list when the unit names several; the first is ours.
        state_dir = resolve(os.environ["STATE_DIRECTORY"].split(":")[0])
    else:
        state_dir = resolve("../var")
    database_url = raw.database or f"sqlite:///{state_dir / 'pipesched.db'}"

    datastores: dict[str, Datastore] = {}
    for name, store in raw.datastores.items():
        where = store.path if store and store.path is not None else None
        path = resolve(where) if where is not None else state_dir / "datastore"
        datastores[name] = Datastore(name=name, path=Path(os.path.realpath(path)))
    if "default" not in datastores:
        errors.append(
            doc.error(
                ("datastores",),
                "there must be a datastore named 'default'",
                hint="add  default: {path: null}  under datastores",
            )
        )

    compute: dict[str, ComputeTarget] = {}
    for name, target in raw.compute.items():
        target = target or _ComputeFile()
        if target.type == "dask" and not target.address:
            errors.append(
                doc.error(
                    ("compute", name),
                    f"compute target '{name}' of type dask needs an 'address'",
                    hint='e.g. address: "tcp://host:8786"',
                    key=True,
                )
            )
        if target.type == "dask" and importlib.util.find_spec("distributed") is None:
            errors.append(
                doc.error(
                    ("compute", name, "type"),
                    f"compute target '{name}' has type dask, but Dask is not installed",
                    hint="pip install 'pipesched[dask]'",
                )
            )
        compute[name] = ComputeTarget(
            name=name,
            type=target.type,
            address=target.address,
            max_workers=target.max_workers or os.cpu_count() or 1,
        )

    tls = None
    if raw.api.tls is not None:
        tls = TlsConfig(cert=resolve(raw.api.tls.cert), key=resolve(raw.api.tls.key))
        for part in ("cert", "key"):
            if not getattr(tls, part).is_file():
                errors.append(
                    doc.error(
                        ("api", "tls", part), f"api.tls.{part} {getattr(tls, part)} does not exist"
                    )
                )
    api = ApiConfig(
        host=raw.api.host,
        port=raw.api.port,
        tls=tls,
        allow_insecure_remote=raw.api.allow_insecure_remote,
        max_body_bytes=raw.api.max_body_bytes,
        max_upload_bytes=raw.api.max_upload_bytes,
    )
    if tls is None and not api.allow_insecure_remote and not is_loopback(api.host):
        errors.append(
            doc.error(
                ("api", "host"),
                f"api.host {api.host} is reachable from other machines but api.tls is not set",
                hint="set api.tls {cert, key}, or allow_insecure_remote: true to send tokens in clear",
            )
        )

    return Config(
        file=file,
        state_dir=state_dir,
        database_url=database_url,
        pipelines_dir=resolve(raw.pipelines_dir),
        schedules_file=resolve(raw.schedules),
        datastores=datastores,
        compute=compute,
        max_concurrent_runs=raw.max_concurrent_runs,
        shutdown_grace=raw.shutdown_grace,
        api=api,
        logging=LoggingConfig(format=raw.logging.format, level=raw.logging.level),
        max_log_bytes=raw.max_log_bytes,
        min_free_space=raw.min_free_space,
    )


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
