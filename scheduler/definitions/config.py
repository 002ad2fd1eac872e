"""The daemon config (``config/pipesched.yaml``): found, validated, paths resolved.

Loading has no side effects — it creates no directory and opens no database — so ``validate`` and
every CLI command can load it freely; the executor and the store create what they need.
Paths in the file are relative to the file itself.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from scheduler.core.errors import ConfigNotFound, DefinitionError, DefinitionErrors
from scheduler.core.secrets import SecretMissing, has_secrets, resolve_secrets
from scheduler.definitions.config_lean import plain_config
from scheduler.definitions.config_types import (
    DEFAULT_LOCATIONS,
    ENV_CONFIG,
    ApiConfig,
    ComputeTarget,
    Config,
    Datastore,
    HaConfig,
    LoggingConfig,
    TlsConfig,
    is_loopback,
    is_module_name,
    parse_byte_count,
)
from scheduler.definitions.operating import (
    notify_from,
    retention_from,
)
from scheduler.definitions.yamlsource import YamlDocument, read_yaml

# The config's types are imported from here by most of pipesched.
__all__ = [
    "DEFAULT_LOCATIONS",
    "ENV_CONFIG",
    "ApiConfig",
    "ComputeTarget",
    "Config",
    "Datastore",
    "HaConfig",
    "LoggingConfig",
    "TlsConfig",
    "find_config",
    "is_loopback",
    "is_module_name",
    "load_config",
    "parse_byte_count",
    "read_config",
]

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
        raw = plain_config(doc) if not doc.errors else None
        if raw is not None:
            errors: list[DefinitionError] = []
            config = _build(raw, file, doc, errors)
            if not errors:
                return config
    return load_config(path)


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
