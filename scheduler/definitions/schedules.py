"""The schedules model (``config/schedules.yaml``): cron, interval, recurrence and on_change
schedules, validated with file:line:col errors. Only the model: firing is the triggers' job.
"""

from __future__ import annotations

import posixpath
import re
import zoneinfo
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from scheduler.core.errors import DefinitionError, DefinitionErrors
from scheduler.definitions.config import Config
from scheduler.definitions.steps import Duration, Model, StrList
from scheduler.definitions.timing import check_cron, zone_name
from scheduler.definitions.validation import Describer, did_you_mean, user_error, validate
from scheduler.definitions.yamlsource import PathKey, YamlDocument, read_yaml

KINDS = ("cron", "interval", "recurrence", "on_change")
WEEK_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FREQUENCIES = ("Minute", "Hour", "Day", "Week", "Month")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MIN_INTERVAL = 0.1
"""The shortest interval a schedule may give, in seconds."""
MAX_INTERVAL = 100 * 365.25 * 86400
"""The longest interval (and recurrence period) a schedule may give, in seconds: 100 years."""
_UNIT_SECONDS = {"Minute": 60, "Hour": 3600, "Day": 86400, "Week": 7 * 86400, "Month": 2629800}
STATE_FOLDER = ".pipesched"

ScheduleCheck = Callable[["ScheduleDef"], list[tuple[PathKey, str]]]
"""A check a caller above this package hands in (the triggers' fire-time computation): the
problems of a valid schedule, each as (field path inside the schedule, message)."""


def _zone(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return zone_name(value)
    except ValueError as exc:
        raise user_error(str(exc), hint="use an IANA name such as UTC or Europe/Berlin") from None


def _capitalized(value: Any) -> Any:
    return value.capitalize() if isinstance(value, str) else value


def _capitalized_list(value: Any) -> Any:
    return [_capitalized(v) for v in value] if isinstance(value, list) else value


def _moment(value: Any) -> Any:
    """YAML timestamps, dates and ISO strings as datetimes (naive ones get the schedule's zone)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise user_error(
                f"not an ISO date-time: {value!r}",
                hint="e.g. 2026-01-05T00:00:00 or 2026-01-05T00:00:00+01:00",
            ) from None
    return value


Moment = Annotated[datetime | None, BeforeValidator(_moment)]
Zone = Annotated[str, BeforeValidator(_zone)]
BoundedDuration = Annotated[Duration, Field(le=MAX_INTERVAL)]  # at most 100 years
PositiveDuration = Annotated[Duration, Field(gt=0, le=MAX_INTERVAL)]


# -- models -------------------------------------------------------------------------------------


class Recurrence(Model):
    """Azure ML's ScheduleRecurrence."""

    frequency: Annotated[
        Literal["Minute", "Hour", "Day", "Week", "Month"], BeforeValidator(_capitalized)
    ]
    interval: int = Field(default=1, ge=1)
    week_days: Annotated[
        list[Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]],
        BeforeValidator(_capitalized_list),
    ] = Field(default_factory=list)
    hours: list[Annotated[int, Field(ge=0, le=23)]] = Field(default_factory=list)
    minutes: list[Annotated[int, Field(ge=0, le=59)]] = Field(default_factory=list)
    time_of_day: str | None = None
    start_time: Moment = None
    time_zone: Zone | None = None

    @field_validator("time_of_day")
    @classmethod
    def _hh_mm(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value):
            raise user_error(f"time_of_day must be HH:MM (got {value!r})", hint='e.g. "17:30"')
        return value


class OnChange(Model):
    """A datastore-change schedule: a run per dropped file, or per settled burst of files."""

    datastore: str = "default"
    path: str = ""
    patterns: Annotated[StrList, Field(min_length=1)] = Field(default_factory=lambda: ["*"])
    ignore_patterns: StrList = Field(default_factory=lambda: ["*.part", "*.tmp", ".*"])
    mode: Literal["per_file", "batch"] = "per_file"
    settle: BoundedDuration = 1.0
    max_batch_files: int = Field(default=1000, ge=1)
    max_wait: PositiveDuration = 30.0
    rescan_interval: PositiveDuration = 300.0
    polling_interval: PositiveDuration | None = None
    data_path_parameter: str | None = None

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        if "\x00" in value:
            raise user_error(
                f"path must not contain a NUL character (got {value!r})", hint="e.g. path: inbox/"
            )
        norm = posixpath.normpath(value) if value else ""
        if value.startswith("/") or norm == ".." or norm.startswith("../"):
            raise user_error(
                f"path must be relative to the datastore root (got {value!r})",
                hint="e.g. path: inbox/",
            )
        if STATE_FOLDER in norm.split("/"):
            raise user_error(
                f"path must not be inside {STATE_FOLDER}/, pipesched's own folder (got {value!r})",
                hint="watch a folder of your own, e.g. path: inbox/",
            )
        return value


class ScheduleDef(Model):
    """One schedule of schedules.yaml (or one created through the API)."""

    name: str
    pipeline: str
    description: str | None = None
    cron: str | None = None
    interval: Duration | None = None  # bounded by _interval
    recurrence: Recurrence | None = None
    on_change: OnChange | None = None
    timezone: Zone = "UTC"
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    experiment: str | None = None
    catchup: Literal["none", "latest", "all"] = "latest"
    catchup_limit: int = Field(default=5, ge=1)
    concurrency: Literal["allow", "forbid", "replace", "queue"] = "forbid"
    jitter: BoundedDuration = 0.0
    start: Moment = None
    end: Moment = None
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise user_error(
                f"bad schedule name {value!r}", hint="use letters, digits, '_', '-' and '.'"
            )
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float | None) -> float | None:
        if value is not None and not MIN_INTERVAL <= value <= MAX_INTERVAL:
            raise user_error(
                f"interval must be between {MIN_INTERVAL} s and 100 years (got {value:g} s)",
                hint='e.g. interval: 30s, interval: "1h", interval: 86400',
            )
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_cron(value)
            except ValueError as exc:
                raise user_error(str(exc), hint='e.g. "0 0 * * MON"; see crontab(5)') from None
        return value

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def pipeline_name(self) -> str:
        return self.pipeline.partition("@")[0]

    @property
    def pipeline_version(self) -> str | None:
        return self.pipeline.partition("@")[2] or None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class _SchedulesFile(Model):
    schedules: list[Any] | None = None


# -- loading ------------------------------------------------------------------------------------


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
