"""Schedules created through the API or the SDK (``source: api``): the one place that checks,
keeps and deletes them, for the daemon's REST handlers and for the embedded SDK alike.

A definition is a schedules.yaml entry as JSON, checked by the same code as the file
(``build_schedule``, then the pipeline's parameters) so the two can never disagree. Names are
unique across schedules.yaml and the store; when the file later gains a name the store already
has, the file wins and the API schedule is left out (``pipesched validate`` says so).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from scheduler.core.clock import SYSTEM_CLOCK
from scheduler.core.errors import (
    DefinitionError,
    DefinitionErrors,
    NotFound,
    PipeschedError,
    SourcePosition,
)
from scheduler.definitions import (
    build_schedule,
    discover_pipelines,
    load_pipeline,
    schedule_parameter_errors,
)
from scheduler.definitions.yamlsource import PathKey, YamlDocument, display_path, read_yaml
from scheduler.services.publish import list_versions, load_published
from scheduler.store import Store
from scheduler.store.engine import sqlite_path
from scheduler.store.errors import ScheduleExists
from scheduler.triggers.time import fire_time_check

if TYPE_CHECKING:
    from scheduler.definitions import Pipeline, ScheduleDef
    from scheduler.definitions.config import Config

_BASE: PathKey = ("schedules", 0)  # where a definition sits in the document built around it
_NOWHERE = Path("<api>")
_MISSING = re.compile(r"missing required field '([^']+)'")


class FieldError(DefinitionError):
    """One field of a schedule definition is not valid; ``loc`` is its path in the definition."""

    def __init__(self, message: str, *, loc: tuple[Any, ...], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.loc = loc

    def __str__(self) -> str:
        return PipeschedError.__str__(self)


class InvalidSchedule(DefinitionErrors):
    """The schedule definition is not valid."""

    errors: list[FieldError]  # type: ignore[assignment]

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors)


class FileScheduleRefused(PipeschedError):
    """That schedule lives in schedules.yaml."""


# -- create and delete ----------------------------------------------------------------------------


# Kept with an API schedule for the clients that made it, not part of what it does: the endpoint a
# schedule made by the SDK's create_for_pipeline_endpoint was made for.
KEPT_BESIDE_DEFINITION = frozenset({"pipeline_endpoint_id"})


def create_api_schedule(config: Config, store: Store, definition: dict[str, Any]) -> ScheduleDef:
    """Check ``definition`` and keep it in the store (registered now). Raises InvalidSchedule
    (each error naming its field) or ScheduleExists (the name is taken, in the file, or in the
    store by a different definition). Creating exactly the schedule the store already has
    changes nothing and answers it (a notebook run again). A running daemon serves a new one
    only once told (``DaemonControl.create_schedule``)."""
    definition = _as_json(definition)
    schedule, _ = check_api_schedule(config, store, definition)
    if schedule.name in file_schedule_names(config):
        raise ScheduleExists(
            f"a schedule named '{schedule.name}' already exists in "
            f"{display_path(config.schedules_file)}",
            hint="schedule names are unique across schedules.yaml and the API",
        )
    if _same_as_kept(store, schedule.name, definition):
        return schedule
    try:
        store.add_api_schedule(schedule.name, definition)
    except ScheduleExists:  # created in between: by this same request from elsewhere?
        if not _same_as_kept(store, schedule.name, definition):
            raise
    return schedule


def _same_as_kept(store: Store, name: str, definition: dict[str, Any]) -> bool:
    """True when the store keeps exactly ``definition`` under ``name``; False when it keeps
    none; ScheduleExists, naming what differs and the way out, when it keeps another."""
    try:
        kept = store.get_api_schedule(name).definition or {}
    except NotFound:
        return False
    if kept == definition:
        return True
    differing = sorted(k for k in set(kept) | set(definition) if kept.get(k) != definition.get(k))
    raise ScheduleExists(
        f"a schedule named '{name}' already exists with a different "
        f"{', '.join(differing)} (created through the API)",
        hint=f"change it with Schedule.update(...) (PUT /api/v1/schedules/{name}), which "
        "keeps its id, or create this one under a new name",
    )


def update_api_schedule(
    config: Config, store: Store, name: str, definition: dict[str, Any]
) -> ScheduleDef:
    """Replace API schedule ``name`` by ``definition`` (its whole schedules.yaml entry, whose
    ``name`` may differ: a rename), checked as a new one is. It keeps its id, its first
    registration (intervals still count from it), its enable/disable override and its fire
    history. A schedule of schedules.yaml is refused (edit the file), and so is a new name
    another schedule has."""
    definition = _as_json(definition)
    schedule, _ = check_api_schedule(config, store, definition)
    in_file = file_schedule_names(config)
    try:
        store.get_api_schedule(name)
    except NotFound:
        if name in in_file:
            raise FileScheduleRefused(
                f"schedule '{name}' lives in {display_path(config.schedules_file)}; "
                "change it there",
                hint="then reload the daemon (SIGHUP)",
            ) from None
        raise NotFound(f"no schedule named '{name}'") from None
    if schedule.name != name and schedule.name in in_file:
        raise ScheduleExists(
            f"cannot rename schedule '{name}' to '{schedule.name}': "
            f"{display_path(config.schedules_file)} has a schedule of that name",
            hint="schedule names are unique across schedules.yaml and the API",
        )
    store.update_api_schedule(name, definition, new_name=schedule.name)
    return schedule


def delete_api_schedule(config: Config, store: Store, name: str) -> None:
    """Forget an API schedule (its fire records stay). A schedule of schedules.yaml is refused;
    an API schedule the file has since shadowed is removed and the file's one keeps its state."""
    in_file = name in file_schedule_names(config)
    try:
        store.get_api_schedule(name)
    except NotFound:
        if in_file:
            raise FileScheduleRefused(
                f"schedule '{name}' lives in {display_path(config.schedules_file)}; "
                "remove it there",
                hint="then reload the daemon (SIGHUP)",
            ) from None
        raise NotFound(f"no schedule named '{name}'") from None
    store.delete_api_schedule(name, keep_registration=in_file)


# -- reading ----------------------------------------------------------------------------------


def api_schedule_defs(config: Config, store: Store) -> list[ScheduleDef]:
    """The API schedules that a daemon of ``config`` would serve now."""
    return [schedule for schedule, _ in load_api_schedules(config, store)[0]]


def load_api_schedules(
    config: Config,
    store: Store,
    *,
    pipelines: dict[str, Any] | None = None,
    rejected: dict[str, tuple[dict[str, Any], list[DefinitionError]]] | None = None,
) -> tuple[list[tuple[ScheduleDef, Pipeline]], list[DefinitionError]]:
    """Every API schedule that checks out, with the pipeline it runs, and one error for each
    one left out: its pipeline went away, its parameters no longer fit, its fire times cannot
    be computed, or schedules.yaml now has its name. ``pipelines`` (reference → loaded
    pipeline) is reused and filled in. ``rejected``, when given, receives the definition and
    errors of each one left out that schedules.yaml does not shadow."""
    in_file = file_schedule_names(config)
    cache = pipelines if pipelines is not None else {}
    good: list[tuple[ScheduleDef, Pipeline]] = []
    errors: list[DefinitionError] = []
    for state in store.api_schedules():
        if state.name in in_file:
            errors.append(
                DefinitionError(
                    f"API schedule '{state.name}' is left out: "
                    f"{display_path(config.schedules_file)} has a schedule of that name",
                    hint=f"rename one, or delete the API one (DELETE /api/v1/schedules/{state.name})",
                )
            )
            continue
        try:
            good.append(check_api_schedule(config, store, state.definition or {}, cache))
        except InvalidSchedule as exc:
            own = [DefinitionError(f"API schedule '{state.name}': {e}") for e in exc.errors]
            errors.extend(own)
            if rejected is not None:
                definition = state.definition if isinstance(state.definition, dict) else {}
                rejected[state.name] = (definition, own)
    return good, errors


def file_schedule_names(config: Config) -> set[str]:
    """Every name schedules.yaml gives, read leniently: a broken entry still holds its name."""
    if not config.schedules_file.is_file():
        return set()
    try:
        raw = read_yaml(config.schedules_file).get(("schedules",)) or []
    except DefinitionErrors:
        return set()
    if not isinstance(raw, list):
        return set()
    return {e["name"] for e in raw if isinstance(e, dict) and isinstance(e.get("name"), str)}


# -- checking ---------------------------------------------------------------------------------


def check_api_schedule(
    config: Config,
    store: Store,
    definition: Any,
    pipelines: dict[str, Any] | None = None,
) -> tuple[ScheduleDef, Pipeline]:
    """The validated schedule and the pipeline it runs (working copy or ``NAME@VERSION``
    published), or InvalidSchedule with every problem found, each naming its field."""
    doc, lines = _document(definition)
    errors: list[DefinitionError] = []
    if not isinstance(definition, dict):
        errors.append(doc.error(_BASE, "a schedule must be a JSON object"))
        raise _invalid(errors, lines)
    endpoint_id = definition.get("pipeline_endpoint_id")
    if endpoint_id is not None and not (
        isinstance(endpoint_id, str) and 0 < len(endpoint_id) <= 200
    ):
        errors.append(
            doc.error(
                (*_BASE, "pipeline_endpoint_id"), "pipeline_endpoint_id must be an endpoint's id"
            )
        )
        raise _invalid(errors, lines)
    definition = {k: v for k, v in definition.items() if k not in KEPT_BESIDE_DEFINITION}
    working = discover_pipelines(config)
    names = set(working) | {v.pipeline for v in list_versions(store)}
    check = fire_time_check(SYSTEM_CLOCK.now())  # the daemon's own trigger code
    schedule = build_schedule(
        definition, config, names, doc=doc, base=_BASE, errors=errors, check=check
    )
    if schedule is None:
        raise _invalid(errors, lines)
    cache = pipelines if pipelines is not None else {}
    pipeline = cache.get(schedule.pipeline)
    if pipeline is None:
        try:
            pipeline = _load_pipeline(config, store, schedule, working)
        except PipeschedError as exc:
            raise _invalid([doc.error((*_BASE, "pipeline"), str(exc))], lines) from None
        cache[schedule.pipeline] = pipeline
    errors.extend(schedule_parameter_errors(config, schedule, pipeline, doc, _BASE))
    if errors:
        raise _invalid(errors, lines)
    return schedule, pipeline


def _load_pipeline(
    config: Config, store: Store, schedule: ScheduleDef, working: dict[str, Path]
) -> Pipeline:
    name, version = schedule.pipeline_name, schedule.pipeline_version
    if version is not None:
        try:
            return load_published(config, store, name, version)[0]
        except NotFound:
            raise PipeschedError(
                f"pipeline '{name}' has no published version '{version}'"
            ) from None
    if name not in working:
        raise PipeschedError(
            f"pipeline '{name}' has only published versions: name one, as {name}@VERSION"
        )
    try:
        return load_pipeline(working[name], config)
    except DefinitionErrors as exc:
        raise PipeschedError(
            f"pipeline '{name}' has errors: {exc.errors[0]}", hint="pipesched validate lists them"
        ) from None


def _document(definition: Any) -> tuple[YamlDocument, dict[int, PathKey]]:
    """A document around the definition, as if it were the first entry of a schedules file (so
    messages say "schedule 'NAME'"), with a made-up position per node: line N is node N, which
    turns each error's position back into the path of the field it is about."""
    doc = YamlDocument(file=_NOWHERE, data={"schedules": [definition]})
    lines: dict[int, PathKey] = {}

    def walk(path: PathKey, value: Any) -> None:
        line = len(lines) + 1
        lines[line] = path
        doc.values[path] = doc.keys[path] = SourcePosition(_NOWHERE, line, 1)
        if isinstance(value, (dict, list)):
            children = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in children:
                walk((*path, key), child)

    walk(_BASE, definition)
    return doc, lines


def _invalid(errors: list[DefinitionError], lines: dict[int, PathKey]) -> InvalidSchedule:
    fields: list[DefinitionError] = []
    for error in errors:
        path = lines.get(error.position.line, _BASE) if error.position else _BASE
        loc = tuple(path[len(_BASE) :])
        missing = _MISSING.match(error.message)
        if missing:  # the validator points at the mapping that lacks the field
            loc = (*loc, missing[1])
        message = error.message.replace("schedule #1", "the schedule")  # a nameless one
        fields.append(FieldError(message, loc=loc, hint=error.hint))
    return InvalidSchedule(fields)


def _as_json(definition: Any) -> Any:
    """The definition as the store keeps it: plain JSON (an SDK caller may hand datetimes)."""

    def default(value: Any) -> Any:
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON")

    try:
        return json.loads(json.dumps(definition, default=default))
    except (TypeError, ValueError) as exc:
        problem = FieldError(f"the schedule is not plain JSON: {exc}", loc=())
        raise InvalidSchedule([problem]) from None


def api_schedule_names(config: Config) -> set[str]:
    """Names of the schedules kept in the store, when there is a database to read: validate
    must not create one, and a database it cannot reach is not a definition error."""
    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is None or not path.is_file():
            return set()
    try:
        with Store.open(config.database_url) as store:
            return {state.name for state in store.api_schedules()}
    except (SQLAlchemyError, PipeschedError):
        return set()
