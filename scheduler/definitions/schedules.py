"""The schedules model (``config/schedules.yaml``): cron, interval, recurrence and on_change
schedules and the checks each field makes on its own. Loading the file, and the checks across
fields, are in ``schedule_loader``; firing is the triggers' job.
"""

from __future__ import annotations

import posixpath
import re
import zoneinfo
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from scheduler.definitions.config_schema import NotifyEntry
from scheduler.definitions.steps import Duration, Model, StrList
from scheduler.definitions.timing import check_cron, zone_name
from scheduler.definitions.validation import user_error

KINDS = ("cron", "interval", "recurrence", "on_change")
WEEK_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FREQUENCIES = ("Minute", "Hour", "Day", "Week", "Month")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MIN_INTERVAL = 0.1
"""The shortest interval a schedule may give, in seconds."""
MAX_INTERVAL = 100 * 365.25 * 86400
"""The longest interval (and recurrence period) a schedule may give, in seconds: 100 years."""
STATE_FOLDER = ".pipesched"


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
    notify: list[NotifyEntry] = Field(default_factory=list, max_length=100)

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
