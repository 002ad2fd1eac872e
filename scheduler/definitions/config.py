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
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from scheduler.core.durations import parse_duration
from scheduler.core.errors import ConfigNotFound, DefinitionError, DefinitionErrors
from scheduler.core.secrets import SecretMissing, has_secrets, resolve_secrets
from scheduler.definitions.operating import (
    DEFAULT_RETENTION,
    NotifyTarget,
    RetentionConfig,
    notify_from,
    retention_from,
)
from scheduler.definitions.yamlsource import YamlDocument, read_yaml

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
    # Modules a warm target's zygote imports once, so steps fork with them loaded; None: cold.
    # ("auto",): learned from what its steps imported.
    warm_imports: tuple[str, ...] | None = None


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
class HaConfig:
    """Several daemons on one PostgreSQL store: ``standby`` daemons wait for the lock and take
    over when the leader's session ends or its lease (renewed every ``heartbeat``) lapses."""

    mode: Literal["single", "standby"] = "single"
    lease: float = 10.0
    heartbeat: float = 2.0


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
    ha: HaConfig = field(default_factory=HaConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    notify: tuple[NotifyTarget, ...] = ()
    #: ``database`` as the file writes it, when it names secrets; what may be shown or cached
    #: in place of ``database_url``, which then holds their values.
    database_written: str | None = None

    @property
    def database_shown(self) -> str:
        """The store's URL as it may be printed: as written when it names secrets, else with
        its password hidden."""
        if self.database_written is not None:
            return self.database_written
        parts = urlsplit(self.database_url)
        if parts.password is None:
            return self.database_url
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def default_datastore(self) -> Datastore:
        return self.datastores["default"]


_BYTE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_BYTE_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def parse_byte_count(text: str) -> int | None:
    """``256MiB``, ``64 KiB``, ``1GB``, ``65536``: a number of bytes; None for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if match and match.group(2).lower() in _BYTE_UNITS:
        return int(match.group(1)) * _BYTE_UNITS[match.group(2).lower()]
    return None


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
    # lazy: pydantic loads only for a full check, not for the paths a read command needs
    from pydantic import ValidationError

    # lazy: as pydantic (the schema and its error wording are pydantic's)
    from scheduler.definitions.config_schema import ConfigFile, describe
    from scheduler.definitions.validation import convert

    file = Path(os.path.abspath(path))
    if not file.is_file():
        raise ConfigNotFound(f"config file {path} does not exist", hint="pass -c PATH")
    doc = read_yaml(file)
    errors: list[DefinitionError] = list(doc.errors)
    try:
        raw: ConfigFile | None = ConfigFile.model_validate(doc.data)
    except ValidationError as exc:
        errors.extend(convert(err, ConfigFile, doc, (), describe) for err in exc.errors())
        # Check the sections that are fine as well, so every mistake shows at once.
        bad = {err["loc"][0] for err in exc.errors() if err["loc"]}
        try:
            raw = ConfigFile.model_validate({k: v for k, v in doc.data.items() if k not in bad})
        except ValidationError:
            raw = None
    config = _build(raw.model_dump(), file, doc, errors) if raw is not None else None
    if errors or config is None:
        raise DefinitionErrors(errors)
    return config


def read_config(path: str | os.PathLike[str]) -> Config:
    """The config ``load_config`` gives, read without pydantic when the file is plainly valid
    (a read command's start-up); any doubt, and the full check decides, with its errors."""
    file = Path(os.path.abspath(path))
    if file.is_file():
        doc = read_yaml(file)
        raw = _plain_config(doc) if not doc.errors else None
        if raw is not None:
            errors: list[DefinitionError] = []
            config = _build(raw, file, doc, errors)
            if not errors:
                return config
    return load_config(path)


# -- the lean check: plain values the schema surely accepts, else None ------------------------

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


def _plain_config(doc: YamlDocument) -> dict[str, Any] | None:
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


def is_module_name(name: str) -> bool:
    """A dotted module name (``sklearn.linear_model``), as ``warm_imports`` lists them."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


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


def _build(
    raw: dict[str, Any], file: Path, doc: YamlDocument, errors: list[DefinitionError]
) -> Config:
    """The config of the file's checked values (``ConfigFile.model_dump()`` or the lean
    check's); what the schema cannot see (a missing datastore, Dask, TLS files, an exposed
    host) is added to ``errors``."""
    base = file.parent

    def resolve(value: str | os.PathLike[str]) -> Path:
        return Path(os.path.normpath(base / os.path.expanduser(value)))

    if raw["state_dir"] is not None:
        state_dir = resolve(raw["state_dir"])
    elif os.environ.get("STATE_DIRECTORY"):
        # systemd sets a colon-separated list when the unit names several; the first is ours.
        state_dir = resolve(os.environ["STATE_DIRECTORY"].split(":")[0])
    else:
        state_dir = resolve("../var")
    database_url = raw["database"] or f"sqlite:///{state_dir / 'pipesched.db'}"
    database_written = database_url if has_secrets(database_url) else None
    if database_written is not None:
        database_url = _resolved_database_url(database_written, base, doc, errors)

    datastores: dict[str, Datastore] = {}
    for name, store in raw["datastores"].items():
        where = store["path"] if store and store["path"] is not None else None
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
    for name, target in raw["compute"].items():
        target = target or {
            "type": "local", "max_workers": None, "address": None, "warm_imports": None
        }  # fmt: skip
        warm = target.get("warm_imports")
        if warm is not None and target["type"] != "local":
            errors.append(
                doc.error(
                    ("compute", name, "warm_imports"),
                    f"compute target '{name}' has type {target['type']}: warm_imports is for "
                    "local targets only",
                    hint="remove warm_imports, or put it on a target of type local",
                    key=True,
                )
            )
        for module in warm if isinstance(warm, list) else ():
            if importlib.util.find_spec(module.partition(".")[0]) is None:
                errors.append(
                    doc.error(
                        ("compute", name, "warm_imports"),
                        f"compute target '{name}': warm_imports names {module}, which "
                        "pipesched's interpreter cannot import",
                        hint=f"install it ({sys.executable} -m pip install ...), or remove it",
                    )
                )
        if target["type"] == "dask" and not target["address"]:
            errors.append(
                doc.error(
                    ("compute", name),
                    f"compute target '{name}' of type dask needs an 'address'",
                    hint='e.g. address: "tcp://host:8786"',
                    key=True,
                )
            )
        if target["type"] == "dask" and importlib.util.find_spec("distributed") is None:
            errors.append(
                doc.error(
                    ("compute", name, "type"),
                    f"compute target '{name}' has type dask, but Dask is not installed",
                    hint="pip install 'pipesched[dask]'",
                )
            )
        compute[name] = ComputeTarget(
            name=name,
            type=target["type"],
            address=target["address"],
            max_workers=target["max_workers"] or os.cpu_count() or 1,
            warm_imports=None if warm is None else ("auto",) if warm == "auto" else tuple(warm),
        )

    tls = None
    raw_api = raw["api"]
    if raw_api["tls"] is not None:
        tls = TlsConfig(cert=resolve(raw_api["tls"]["cert"]), key=resolve(raw_api["tls"]["key"]))
        for part in ("cert", "key"):
            if not getattr(tls, part).is_file():
                errors.append(
                    doc.error(
                        ("api", "tls", part), f"api.tls.{part} {getattr(tls, part)} does not exist"
                    )
                )
    api = ApiConfig(
        host=raw_api["host"],
        port=raw_api["port"],
        tls=tls,
        allow_insecure_remote=raw_api["allow_insecure_remote"],
        max_body_bytes=raw_api["max_body_bytes"],
        max_upload_bytes=raw_api["max_upload_bytes"],
    )
    if tls is None and not api.allow_insecure_remote and not is_loopback(api.host):
        errors.append(
            doc.error(
                ("api", "host"),
                f"api.host {api.host} is reachable from other machines but api.tls is not set",
                hint="set api.tls {cert, key}, or allow_insecure_remote: true to send tokens in clear",
            )
        )

    ha = HaConfig(**raw["ha"])
    if ha.heartbeat * 2 > ha.lease:
        errors.append(
            doc.error(
                ("ha", "heartbeat"),
                f"ha.heartbeat ({ha.heartbeat:g}s) must be at most half of ha.lease ({ha.lease:g}s)",
                hint="a leader renews its lease every heartbeat; two missed renewals must fit in it",
            )
        )
    if ha.mode == "standby" and not database_url.startswith("postgresql"):
        errors.append(
            doc.error(
                ("ha", "mode"),
                "ha.mode standby needs a PostgreSQL database: daemons on other machines must "
                "share the store",
                hint="set database: postgresql+psycopg://... , or ha.mode: single",
            )
        )

    return Config(
        file=file,
        state_dir=state_dir,
        database_url=database_url,
        pipelines_dir=resolve(raw["pipelines_dir"]),
        schedules_file=resolve(raw["schedules"]),
        datastores=datastores,
        compute=compute,
        max_concurrent_runs=raw["max_concurrent_runs"],
        shutdown_grace=raw["shutdown_grace"],
        api=api,
        logging=LoggingConfig(format=raw["logging"]["format"], level=raw["logging"]["level"]),
        max_log_bytes=raw["max_log_bytes"],
        min_free_space=raw["min_free_space"],
        ha=ha,
        retention=retention_from(raw["retention"]),
        notify=notify_from(raw["notify"] or []),
        database_written=database_written,
    )


def _resolved_database_url(
    written: str, base: Path, doc: YamlDocument, errors: list[DefinitionError]
) -> str:
    """``database`` with its secrets' values, checked as a SQLAlchemy URL only now that they are
    known; a missing secret or a bad URL is an error at the field, never showing a value."""
    try:
        url = resolve_secrets(written, base=base)
    except SecretMissing as exc:
        errors.append(doc.error(("database",), exc.message, hint=exc.hint))
        return written
    from sqlalchemy.engine import make_url  # lazy: only a URL with secrets is parsed here

    try:
        make_url(url)
    except Exception:  # sqlalchemy raises ArgumentError or ValueError, quoting the URL
        errors.append(
            doc.error(
                ("database",),
                "not a SQLAlchemy URL once its secrets are filled in",
                hint="the value must hold a whole URL or the part of one it stands for",
            )
        )
        return written
    return url


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
