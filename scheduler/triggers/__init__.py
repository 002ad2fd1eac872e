"""Triggers: when schedules fire. ``time`` (cron, interval, Azure recurrence; pure functions of a
schedule and a moment, plus their APScheduler face) and ``describe`` (plain English). File-drop
triggers live beside them. Triggers know nothing of processes or the store."""

from scheduler.triggers.describe import describe, describe_cron, expression
from scheduler.triggers.recurrence import RecurrenceTrigger, resolve_wall_time
from scheduler.triggers.time import (
    COUNT_CAP,
    APSchedulerTrigger,
    CronTrigger,
    Fires,
    IntervalTrigger,
    TimeTrigger,
    cron_trigger,
    time_trigger,
)

__all__ = [
    "COUNT_CAP",
    "APSchedulerTrigger",
    "CronTrigger",
    "Fires",
    "IntervalTrigger",
    "RecurrenceTrigger",
    "TimeTrigger",
    "cron_trigger",
    "describe",
    "describe_cron",
    "expression",
    "resolve_wall_time",
    "time_trigger",
]
