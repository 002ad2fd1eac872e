"""Options shared by every subcommand, and how a command finds its config and store."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store  # lazy: commands a daemon answers never load SQLAlchemy

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    """``-c/--config`` accepted after the subcommand too (anywhere among its arguments)."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Config file [env: PIPESCHED_CONFIG].",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


OUTPUT_FORMATS = ("wide", "json")


def output_option(func: F) -> F:
    """``-o wide`` (every column, whole, with absolute times) or ``-o json`` (as ``--json``),
    as ``kubectl get -o`` does."""
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(OUTPUT_FORMATS),
        default=None,
        help="wide: every column, nothing shortened, absolute times; json: as --json.",
    )(func)


def wants_json(as_json: bool, output: str | None) -> bool:
    """Whether the command prints JSON: ``--json`` or ``-o json``."""
    return as_json or output == "json"


def no_headers_option(func: F) -> F:
    return click.option("--no-headers", is_flag=True, help="Leave out the header row.")(func)


def requested_config_path(config_path: str | None) -> str | None:
    """The command's own -c, else the group's: the config the user asked for, if any."""
    if config_path is None:
        ctx = click.get_current_context(silent=True)
        while ctx is not None and config_path is None:
            if isinstance(ctx.obj, dict):
                config_path = ctx.obj.get("config_path")
            ctx = ctx.parent
    return config_path


def find_config_path(config_path: str | None) -> Path:
    """The config file this command uses (see ``load_config``), without loading it."""
    from scheduler.definitions.config import find_config  # lazy: `next` and --help need no config

    return find_config(requested_config_path(config_path))


def load_config(config_path: str | None) -> Config:
    """The config this command uses: its own -c, else the group's -c / $PIPESCHED_CONFIG, else
    the default search."""
    from scheduler.definitions.config import load_config as _load  # lazy: as find_config_path

    return _load(find_config_path(config_path))


def open_store(config: Config) -> Store:
    from scheduler.store import Store  # lazy: commands a daemon answers never load SQLAlchemy

    return Store.open(config.database_url)


# -- shell completion ------------------------------------------------------------------------
# Completers run on every TAB, in a process started for it: they find the config's files with
# PyYAML alone (not the validated config: its models cost more than the rest of a TAB), read
# the store's file with the standard library (scheduler.store.completion_reads), and complete
# nothing rather than fail. Attach them with ``shell_complete=`` on an argument or option.

CompletionItems = list[CompletionItem]
RUN_ID_CANDIDATES = 50
CONFIG_LOCATIONS = (Path("config/pipesched.yaml"), Path("/etc/pipesched/pipesched.yaml"))


@dataclass(frozen=True)
class CompletionPlaces:
    """Where a TAB reads: the store, the pipelines, the schedules file — as ``load_config``
    would place them (a test holds the two to the same answers)."""

    database_url: str
    pipelines_dir: Path
    schedules_file: Path


def completion_places(ctx: click.Context) -> CompletionPlaces | None:
    """The places of the config the command on the line would use (its -c, the group's -c or
    $PIPESCHED_CONFIG, else the default search), or None when there is no readable one."""
    explicit: str | None = None
    current: click.Context | None = ctx
    while current is not None and explicit is None:
        explicit = current.params.get("config_path")
        current = current.parent
    given = explicit or os.environ.get("PIPESCHED_CONFIG")
    candidates = [Path(given)] if given else list(CONFIG_LOCATIONS)
    file = next((path for path in candidates if path.is_file()), None)
    data = _yaml_file(file) if file is not None else None
    if file is None or not isinstance(data, dict):
        return None
    base = Path(os.path.abspath(file)).parent

    def resolve(value: object) -> Path:
        return Path(os.path.normpath(base / os.path.expanduser(str(value))))

    if data.get("state_dir") is not None:
        state_dir = resolve(data["state_dir"])
    elif os.environ.get("STATE_DIRECTORY"):
        state_dir = resolve(os.environ["STATE_DIRECTORY"].split(":")[0])
    else:
        state_dir = resolve("../var")
    database = data.get("database")
    return CompletionPlaces(
        database_url=database
        if isinstance(database, str) and database
        else f"sqlite:///{state_dir / 'pipesched.db'}",
        pipelines_dir=resolve(data.get("pipelines_dir") or "../pipelines"),
        schedules_file=resolve(data.get("schedules") or "schedules.yaml"),
    )


def _yaml_file(path: Path) -> Any:
    import yaml

    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def _param(ctx: click.Context, name: str) -> str | None:
    value = ctx.params.get(name)
    return value if isinstance(value, str) and value else None


def _argument(ctx: click.Context, name: str) -> str | None:
    """The command's first argument ``name`` as typed. While an option's value is completed,
    click's parsing stops at that option and leaves the arguments before it in ``ctx.args``."""
    return _param(ctx, name) or next((arg for arg in ctx.args if not arg.startswith("-")), None)


def _items(values: list[str], incomplete: str) -> CompletionItems:
    return [CompletionItem(v) for v in values if v.startswith(incomplete)]


def complete_run_id(ctx: click.Context, param: click.Parameter, incomplete: str) -> CompletionItems:
    """Run ids, newest first (of ``--pipeline`` when it is on the line), or ``latest``."""
    from scheduler.store import completion_reads as reads  # lazy: only a TAB pays for it

    if incomplete and reads.LATEST.startswith(incomplete.lower()) and len(incomplete) > 1:
        return [CompletionItem(reads.LATEST, help="the newest run")]
    config = completion_places(ctx)
    if config is None:
        return []
    pipeline = _param(ctx, "pipeline")
    database = reads.sqlite_file(config.database_url)
    if database is not None:
        runs = reads.recent_runs(database, incomplete, pipeline=pipeline, limit=RUN_ID_CANDIDATES)
    else:
        runs = _store_runs(config, incomplete, pipeline)
    return [CompletionItem(run_id, help=f"{name} {status}") for run_id, name, status in runs]


def complete_step(ctx: click.Context, param: click.Parameter, incomplete: str) -> CompletionItems:
    """The steps of the run named on the line (a prefix or ``latest``)."""
    from scheduler.store import completion_reads as reads  # lazy: only a TAB pays for it

    run_ref = _argument(ctx, "run_id")
    config = completion_places(ctx) if run_ref else None
    if config is None or run_ref is None:
        return []
    pipeline = _param(ctx, "pipeline")
    database = reads.sqlite_file(config.database_url)
    if database is not None:
        steps = reads.run_steps(database, run_ref, pipeline=pipeline)
    else:
        steps = _store_steps(config, run_ref, pipeline)
    return _items(steps, incomplete)


def complete_pipeline(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> CompletionItems:
    """The pipelines under the config's pipelines_dir."""
    config = completion_places(ctx)
    if config is None:
        return []
    try:
        folders = sorted(p for p in config.pipelines_dir.iterdir() if not p.name.startswith("."))
    except OSError:
        return []
    names = set()
    for folder in folders:
        if (folder / "pipeline.yaml").is_file():
            data = _yaml_file(folder / "pipeline.yaml")
            name = data.get("name") if isinstance(data, dict) else None
            names.add(name if isinstance(name, str) and name else folder.name)
    return _items(sorted(names), incomplete)


def complete_schedule(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> CompletionItems:
    """The schedules of schedules.yaml, then those created through the API."""
    from scheduler.store import completion_reads as reads  # lazy: only a TAB pays for it

    config = completion_places(ctx)
    if config is None:
        return []
    names = _file_schedule_names(config.schedules_file)
    database = reads.sqlite_file(config.database_url)
    if database is not None:
        api = reads.api_schedule_names(database)
    else:
        api = _store_api_schedules(config)
    return _items(names + [name for name in api if name not in names], incomplete)


def complete_metric(ctx: click.Context, param: click.Parameter, incomplete: str) -> CompletionItems:
    """The metric names the newest runs of the pipeline on the line logged."""
    from scheduler.store import completion_reads as reads  # lazy: only a TAB pays for it

    pipeline = _argument(ctx, "pipeline")
    config = completion_places(ctx) if pipeline else None
    if config is None or pipeline is None:
        return []
    database = reads.sqlite_file(config.database_url)
    if database is not None:
        names = reads.metric_names(database, pipeline)
    else:
        names = _store_metric_names(config, pipeline)
    return _items(names, incomplete)


def _file_schedule_names(schedules_file: Path) -> list[str]:
    data = _yaml_file(schedules_file)
    entries = data.get("schedules") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    return [e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)]


# A PostgreSQL store: the same answers through the Store facade (a server needs its driver).


def _store_runs(
    config: CompletionPlaces, prefix: str, pipeline: str | None
) -> list[tuple[str, str, str]]:
    from scheduler.core.ids import normalize_id  # lazy: only a TAB on PostgreSQL pays for it

    wanted = normalize_id(prefix)
    try:
        with _open_store(config.database_url) as store:
            runs = store.list_runs(pipeline=pipeline, limit=RUN_ID_CANDIDATES * 4)
    except Exception:
        return []
    found = [(r.id, r.pipeline, str(r.status)) for r in runs if r.id.startswith(wanted)]
    return found[:RUN_ID_CANDIDATES]


def _store_steps(config: CompletionPlaces, run_ref: str, pipeline: str | None) -> list[str]:
    from scheduler.services.runs import resolve_run  # lazy: only a TAB on PostgreSQL pays

    try:
        with _open_store(config.database_url) as store:
            detail = store.get_run_detail(resolve_run(store, run_ref, pipeline=pipeline))
    except Exception:
        return []
    return list(detail.latest_attempts())


def _store_api_schedules(config: CompletionPlaces) -> list[str]:
    try:
        with _open_store(config.database_url) as store:
            states = store.schedule_states()
    except Exception:
        return []
    return sorted(name for name, state in states.items() if state.source == "api")


def _store_metric_names(config: CompletionPlaces, pipeline: str) -> list[str]:
    try:
        with _open_store(config.database_url) as store:
            runs = store.list_runs(pipeline=pipeline, limit=5)
            details = [store.get_run_detail(run.id) for run in runs]
    except Exception:
        return []
    return sorted({metric.name for detail in details for metric in detail.metrics})


def _open_store(database_url: str) -> Store:
    from scheduler.store import Store  # lazy: only a TAB on PostgreSQL pays for SQLAlchemy

    return Store.open(database_url)
