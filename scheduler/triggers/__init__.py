"""Triggers: when time schedules fire, as pure functions of a schedule and a moment. ``base`` (what
every trigger answers), ``interval``, ``recurrence`` (Azure's ScheduleRecurrence), ``time`` (cron,
the trigger of any time schedule) and ``describe`` (plain English).
Triggers know nothing of processes, the store or the clock."""

from scheduler.triggers.base import COUNT_CAP, Fires, TimeTrigger
from scheduler.triggers.describe import describe, describe_cron, expression
from scheduler.triggers.interval import IntervalTrigger
from scheduler.triggers.recurrence import RecurrenceTrigger, resolve_wall_time
from scheduler.triggers.time import (
    CronTrigger,
    cron_trigger,
    fire_time_check,
    fire_time_problems,
    time_trigger,
)

__all__ = [
    "COUNT_CAP",
    "CronTrigger",
    "Fires",
    "IntervalTrigger",
    "RecurrenceTrigger",
    "TimeTrigger",
    "cron_trigger",
    "describe",
    "describe_cron",
    "expression",
    "fire_time_check",
    "fire_time_problems",
    "resolve_wall_time",
    "time_trigger",
]
