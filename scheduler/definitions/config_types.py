"""The daemon config's values, as the rest of pipesched sees them: plain frozen dataclasses,
apart from how a file becomes one (``config``), so that the lean check and the full one share
them without importing each other.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from scheduler.definitions.operating import NotifyTarget, RetentionConfig

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


def is_module_name(name: str) -> bool:
    """A dotted module name (``sklearn.linear_model``), as ``warm_imports`` lists them."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
