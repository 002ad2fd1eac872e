"""Compiled pipelines: what a foreground run needs of a validated config and pipeline, as plain
JSON, cached by the content of every file it came from.

Loading a pipeline validates it with pydantic models whose import alone costs more than a small
step; a plan read from this cache needs none of it. A plan is only ever a copy: the loader stays
the one definition of what a pipeline means, and a plan is rebuilt whenever anything it was
built from differs. It records each file it read with the SHA-256 of its content (or its
absence), the folder listing that resolved the pipeline's name, the environment variables the
config reads, the working folder (for a pipeline named by its path), and pipesched's own code
(the modules that shape a plan, by size and mtime).

Plans live in the user's cache folder (``$XDG_CACHE_HOME/pipesched/plans``, else
``~/.cache/pipesched/plans``): the state directory is only known once the config is loaded, and a
plan is private like the config it copies (folder 0700, files 0600). A plan that cannot be
read, parsed or trusted is simply not used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.definitions import json_cache

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.definitions.pipeline import Pipeline

#: The variable naming the config (``definitions.config.ENV_CONFIG``; a test holds them equal).
ENV_CONFIG = "PIPESCHED_CONFIG"
#: Bumped whenever a plan's fields change meaning.
PLAN_FORMAT = 3
#: The environment variables that change what a config or a pipeline resolves to.
PLAN_ENVIRONMENT = ("STATE_DIRECTORY",)
#: Modules whose code shapes a plan: a change to one (a development checkout) rebuilds plans.
_SHAPING_MODULES = (
    "compiled.py",
    "config.py",
    "pipeline.py",
    "pipeline_loader.py",
    "steps.py",
    "parameters.py",
    "checks.py",
    "discovery.py",
)
_DATASTORE_URI = re.compile(r"datastore://")
# The fields the lean path knows how to run. A pipeline with any other (a field added to the
# definitions later) gets no plan, so the full path runs it: a plan never drops a meaning.
_PIPELINE_FIELDS = frozenset(
    {"name", "description", "experiment", "continue_on_step_failure", "parameters", "data", "steps"}
)
_STEP_FIELDS = frozenset(
    {
        "id",
        "type",
        "display_name",
        "source_directory",
        "inputs",
        "outputs",
        "depends_on",
        "allow_reuse",
        "compute",
        "timeout",
        "retries",
        "retry_delay",
        "retry_backoff",
        "retry_max_delay",
        "environment",
        "warm",
        "script",
        "arguments",
    }
)
_ENVIRONMENT_FIELDS = frozenset({"python", "variables"})


def cache_dir() -> Path:
    return json_cache.cache_dir("plans")


def config_request(explicit: str | None) -> list[str | None]:
    """What decides the config file, found without reading the config module: ``-c``, else
    ``$PIPESCHED_CONFIG``, else the default search, which starts in the working folder."""
    from_env = os.environ.get(ENV_CONFIG)
    if explicit:
        return ["-c", os.path.abspath(explicit)]
    if from_env:
        return [ENV_CONFIG, os.path.abspath(from_env)]
    return ["default", os.getcwd()]


def plan_path(request: list[str | None], pipeline: str) -> Path:
    """Where the plan of ``pipeline`` (as the user named it) for the config ``request`` is
    kept. A name is looked up under the config's ``pipelines_dir``; a path is relative to the
    working folder, which then keys the plan too."""
    is_path = os.sep in pipeline or pipeline.endswith((".yaml", ".yml"))
    where = os.getcwd() if is_path else None
    return json_cache.keyed_path(cache_dir(), [request, pipeline, where])


def _code_stamp() -> list[list[Any]]:
    here = os.path.dirname(os.path.abspath(__file__))
    stamp: list[list[Any]] = []
    for name in _SHAPING_MODULES:
        try:
            info = os.stat(os.path.join(here, name))
        except OSError:
            stamp.append([name, None])
            continue
        stamp.append([name, info.st_size, info.st_mtime_ns])
    return stamp


def _sources(files: Iterable[str], folders: Iterable[str]) -> dict[str, Any]:
    return {
        "files": {path: json_cache.file_digest(path) for path in sorted(set(files))},
        "folders": {path: json_cache.folder_listing(path) for path in sorted(set(folders))},
        "environment": {name: os.environ.get(name) for name in PLAN_ENVIRONMENT},
        "code": _code_stamp(),
        "format": PLAN_FORMAT,
    }


def load_plan(request: list[str | None], pipeline: str) -> dict[str, Any] | None:
    """The cached plan of ``pipeline`` when every source it was built from is unchanged; None
    otherwise (no plan, an unreadable one, or a stale one)."""
    try:
        with open(plan_path(request, pipeline), "rb") as handle:
            plan: dict[str, Any] = json.loads(handle.read())
        recorded = plan["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        current = _sources(recorded["files"], recorded["folders"])
    except (KeyError, TypeError):
        return None
    return plan if current == recorded else None


def save_plan(request: list[str | None], pipeline: str, plan: Mapping[str, Any]) -> None:
    """Write ``plan`` for the next run, atomically and privately; a failure only costs speed."""
    json_cache.save_json(plan_path(request, pipeline), plan)


def forget_plan(request: list[str | None], pipeline: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(plan_path(request, pipeline))


def compile_plan(
    config: Config,
    pipeline: Pipeline,
    pipeline_file: Path,
    *,
    schema_revision: str,
) -> dict[str, Any] | None:
    """The plan of ``pipeline`` run with its default parameters, or None when it needs more than
    the lean foreground path offers: a database other than a SQLite file, a step other than a
    ``python_script`` on a local compute target, a ``datastore://`` path or a secret written in
    a step or a default, or a required parameter (refused by the full path with its own
    message). ``schema_revision``: the database schema the plan's records are written for."""
    # lazy: the full definitions are loaded already when a plan is compiled
    from scheduler.core.errors import PipeschedError
    from scheduler.core.secrets import has_secrets
    from scheduler.definitions.config import DEFAULT_LOCATIONS
    from scheduler.definitions.graph import build_graph
    from scheduler.definitions.parameters import argv_value, resolve_run_parameters

    prefix = "sqlite:///"
    if not config.database_url.startswith(prefix) or config.database_url == prefix:
        return None
    if config.database_written is not None:
        return None  # a plan file must not hold a secret's value
    database = config.database_url[len(prefix) :]
    if database.startswith(":memory:"):
        return None
    try:
        parameters = resolve_run_parameters(pipeline, {}, config.datastores)
    except PipeschedError:
        return None
    if any(isinstance(value, str) and has_secrets(value) for value in parameters.values()):
        return None
    argv_parameters = {
        name: argv_value(definition, parameters.get(name), config.datastores)
        for name, definition in pipeline.parameters.items()
    }
    graph = build_graph(pipeline)
    definition = pipeline.definition_dict()
    if not set(definition) <= _PIPELINE_FIELDS or not all(
        set(step) <= _STEP_FIELDS and set(step.get("environment") or {}) <= _ENVIRONMENT_FIELDS
        for step in definition["steps"].values()
    ):
        return None
    steps = []
    scripts = []
    for step in pipeline.steps.values():
        target = config.compute.get(step.compute)
        if step.type != "python_script" or target is None or target.type != "local":
            return None
        if any(_DATASTORE_URI.search(text) for _, text in step.string_fields()):
            return None
        if any(has_secrets(text) for _, text in step.string_fields()):
            return None  # the full path checks every secret before it records a run
        script = str(step.script_path)
        scripts.append(script)
        refs = sorted(step.parameter_refs())
        steps.append(
            {
                "id": step.id,
                "display_name": step.display_name,
                "type": step.type,
                "compute": step.compute,
                "max_workers": max(1, target.max_workers),
                "retries": step.retries,
                "retry_delay": step.retry_delay,
                "retry_backoff": step.retry_backoff,
                "retry_max_delay": step.retry_max_delay,
                "timeout": step.timeout,
                "allow_reuse": step.allow_reuse,
                "source_directory": str(step.source_directory),
                "python": step.environment.python,
                "warm": step.warm,
                "variables": dict(step.environment.variables),
                "script": script,
                "arguments": [str(a) for a in step.arguments],
                "produces": list(step.produces()),
                "consumes": sorted(step.consumes()),
                "parameter_refs": refs,
                "path_refs": [r for r in refs if pipeline.parameters[r].type == "path"],
                "upstream": sorted(graph.upstream(step.id)),
                "definition": definition["steps"][step.id],
            }
        )
    discovered = [str(config.pipelines_dir)]
    discovered += [
        str(config.pipelines_dir / name)
        for name in json_cache.folder_listing(str(config.pipelines_dir)) or []
        if not name.startswith(".")
    ]
    # The config file, and every place the default search looks before it: one appearing there
    # would be the config instead.
    candidates = [os.path.abspath(path) for path in DEFAULT_LOCATIONS]
    files = [str(config.file), str(pipeline_file), *candidates]
    files += [os.path.join(folder, "pipeline.yaml") for folder in discovered[1:]]
    return {
        "sources": _sources([*files, *scripts], discovered),
        "schema_revision": schema_revision,
        "config": {
            "file": str(config.file),
            "state_dir": str(config.state_dir),
            "runs_dir": str(config.runs_dir),
            "database": database,
            "max_log_bytes": config.max_log_bytes,
            "min_free_space": config.min_free_space,
            "datastores": {name: str(store.path) for name, store in config.datastores.items()},
            "default_datastore": str(config.default_datastore.path),
            "warm_imports": {
                name: list(target.warm_imports)
                for name, target in config.compute.items()
                if target.type == "local" and target.warm_imports is not None
            },
        },
        "pipeline": {
            "name": pipeline.name,
            "experiment": pipeline.experiment,
            "directory": str(pipeline.directory),
            "continue_on_step_failure": pipeline.continue_on_step_failure,
            "definition": definition,
            "parameters": parameters,
            "argv_parameters": argv_parameters,
            "data_datastores": {name: data.datastore for name, data in pipeline.data.items()},
        },
        "steps": steps,
    }
