"""Loading schedules.yaml (and one schedule mapping, for the API) into ``ScheduleDef`` models.

Each schedule is validated on its own, then checked across its fields (exactly one kind, a known
pipeline and datastore, recurrence rules, start before end), so one bad schedule neither hides the
others' mistakes nor keeps the good ones from loading. Errors carry file:line:col.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from scheduler.core.errors import DefinitionError, DefinitionErrors
from scheduler.definitions.config import Config
from scheduler.definitions.schedules import KINDS, MAX_INTERVAL, Recurrence, ScheduleDef
from scheduler.definitions.steps import Model
from scheduler.definitions.validation import Describer, did_you_mean, validate
from scheduler.definitions.yamlsource import PathKey, YamlDocument, read_yaml

_UNIT_SECONDS = {"Minute": 60, "Hour": 3600, "Day": 86400, "Week": 7 * 86400, "Month": 2629800}

ScheduleCheck = Callable[["ScheduleDef"], list[tuple[PathKey, str]]]
"""A check a caller above this package hands in (the triggers' fire-time computation): the
problems of a valid schedule, each as (field path inside the schedule, message)."""


class _SchedulesFile(Model):
    schedules: list[Any] | None = None


def load_schedules(
    path: Path,
    config: Config | None,
    pipeline_names: set[str],
    *,
    check: ScheduleCheck | None = None,
) -> list[ScheduleDef]:
    """Load and validate schedules.yaml; raise DefinitionErrors with every mistake in it."""
    result, errors = load_valid_schedules(path, config, pipeline_names, check=check)
    if errors:
        raise DefinitionErrors(errors)
    return result


def load_valid_schedules(
    path: Path,
    config: Config | None,
    pipeline_names: set[str],
    *,
    check: ScheduleCheck | None = None,
    rejected: dict[str, list[DefinitionError]] | None = None,
) -> tuple[list[ScheduleDef], list[DefinitionError]]:
    """The valid schedules of schedules.yaml and every mistake in the others: the daemon serves
    the good ones and reports the rest. ``check`` is run on each schedule that is otherwise
    valid; ``rejected``, when given, receives the errors of each left-out schedule that has a
    name."""
    doc = read_yaml(Path(path))
    errors: list[DefinitionError] = list(doc.errors)
    top = validate(_SchedulesFile, doc.data, doc, (), _describe(doc), errors)
    result: list[ScheduleDef] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate((top.schedules or []) if top else []):
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str):
            name = None  # a list or a mapping: the model reports it
        if name is not None and name in seen:
            first = doc.position(("schedules", seen[name], "name"))
            where = f" (first at line {first.line})" if first else ""
            errors.append(
                doc.error(
                    ("schedules", i, "name"),
                    f"duplicate schedule name '{name}'{where}",
                    hint="schedule names are unique",
                )
            )
            continue
        if name is not None:
            seen[name] = i
        own: list[DefinitionError] = []
        schedule = build_schedule(
            raw, config, pipeline_names, doc=doc, base=("schedules", i), errors=own, check=check
        )
        errors.extend(own)
        if schedule is not None:
            result.append(schedule)
        elif rejected is not None and name is not None:
            rejected[name] = own
    return result, errors


def build_schedule(
    raw: Any,
    config: Config | None,
    pipeline_names: set[str] | None,
    *,
    doc: YamlDocument | None = None,
    base: PathKey = (),
    errors: list[DefinitionError] | None = None,
    check: ScheduleCheck | None = None,
) -> ScheduleDef | None:
    """Validate one schedule mapping. With ``errors`` given, add to it and return None on
    failure; without, raise DefinitionErrors (for schedules created through the API).
    ``check`` (when the rest is valid) adds its problems, each at its field."""
    own: list[DefinitionError] = []
    doc = doc or YamlDocument.from_data({}, Path("schedule"))
    schedule = validate(ScheduleDef, raw, doc, base, _describe(doc), own)
    if schedule is not None:
        schedule = _cross_checks(schedule, raw, config, pipeline_names, doc, base, own)
    if schedule is not None and not own and check is not None:
        own.extend(doc.error((*base, *field), message) for field, message in check(schedule))
    if errors is None and own:
        raise DefinitionErrors(own)
    if errors is not None:
        errors.extend(own)
    return None if own else schedule


def _cross_checks(
    schedule: ScheduleDef,
    raw: dict[str, Any],
    config: Config | None,
    pipeline_names: set[str] | None,
    doc: YamlDocument,
    base: PathKey,
    errors: list[DefinitionError],
) -> ScheduleDef:
    where = f"schedule '{schedule.name}'"
    kinds = [k for k in KINDS if getattr(schedule, k) is not None]
    if len(kinds) != 1:
        path = (*base, kinds[1]) if len(kinds) > 1 else base
        errors.append(
            doc.error(
                path,
                f"{where} needs exactly one of cron, interval, recurrence "
                f"or on_change (has {', '.join(kinds) or 'none'})",
                key=len(kinds) > 1,
            )
        )
    if pipeline_names is not None and schedule.pipeline_name not in pipeline_names:
        hint = did_you_mean(schedule.pipeline_name, pipeline_names, label="known")
        errors.append(
            doc.error(
                (*base, "pipeline"),
                f"unknown pipeline '{schedule.pipeline_name}' in {where}",
                hint=hint,
            )
        )
    timezone = schedule.timezone
    rec = schedule.recurrence
    if rec is not None:
        if rec.time_zone and "timezone" in raw and rec.time_zone != schedule.timezone:
            errors.append(
                doc.error(
                    (*base, "recurrence", "time_zone"),
                    f"recurrence.time_zone and timezone of {where} differ",
                    hint="they are the same setting: keep one",
                )
            )
        timezone = rec.time_zone or timezone
        errors.extend(_recurrence_rules(rec, doc, (*base, "recurrence"), where))
        period = rec.interval * _UNIT_SECONDS[rec.frequency]
        if period > MAX_INTERVAL:
            longest = int(MAX_INTERVAL // _UNIT_SECONDS[rec.frequency])
            errors.append(
                doc.error(
                    (*base, "recurrence", "interval"),
                    f"recurrence interval of {where} is {rec.interval} "
                    f"{rec.frequency.lower()}s: more than 100 years",
                    hint=f"at most {longest} for frequency {rec.frequency}",
                )
            )
    watch = schedule.on_change
    if watch is not None and config is not None and watch.datastore not in config.datastores:
        errors.append(
            doc.error(
                (*base, "on_change", "datastore"),
                f"unknown datastore '{watch.datastore}'",
                hint=f"configured: {', '.join(sorted(config.datastores))}",
            )
        )
    zone = zoneinfo.ZoneInfo(timezone)
    start, end = (_aware(schedule.start, zone), _aware(schedule.end, zone))
    if start and end and end <= start:
        errors.append(doc.error((*base, "end"), f"end of {where} is not after its start"))
    update: dict[str, Any] = {"timezone": timezone, "start": start, "end": end}
    if rec is not None and rec.start_time is not None:
        update["recurrence"] = rec.model_copy(update={"start_time": _aware(rec.start_time, zone)})
    return schedule.model_copy(update=update)


def _recurrence_rules(
    rec: Recurrence, doc: YamlDocument, base: PathKey, where: str
) -> list[DefinitionError]:
    """Azure ScheduleRecurrence's own rules."""
    errors = []
    if rec.week_days and rec.frequency != "Week":
        errors.append(
            doc.error(
                (*base, "week_days"),
                f"week_days of {where} need frequency Week (has {rec.frequency})",
            )
        )
    for field in ("hours", "minutes", "time_of_day"):
        if getattr(rec, field) and rec.frequency not in ("Day", "Week"):
            errors.append(
                doc.error(
                    (*base, field),
                    f"{field} of {where} need frequency Day or Week (has {rec.frequency})",
                )
            )
    if rec.time_of_day and (rec.hours or rec.minutes):
        errors.append(
            doc.error(
                (*base, "time_of_day"),
                f"{where} gives both time_of_day and hours/minutes",
                hint="use one or the other",
            )
        )
    return errors


def _aware(value: datetime | None, zone: zoneinfo.ZoneInfo) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone)


def _describe(doc: YamlDocument) -> Describer:
    def describe(path: PathKey) -> tuple[str, PathKey]:
        if len(path) >= 2 and path[0] == "schedules":
            name = doc.get((*path[:2], "name"))
            label = f"schedule '{name}'" if isinstance(name, str) else f"schedule #{path[1] + 1}"
            return label, path[2:]
        return "the schedules file", path

    return describe
