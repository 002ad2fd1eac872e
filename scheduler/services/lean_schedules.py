"""``pipesched schedules`` without pydantic or the ORM, from a cached copy of what the full
loaders made (``definitions.listing_cache``).

The full path validates every schedule, then keeps each served schedule's fields and its entry as
written as plain JSON. It keeps them only when nothing was left out or warned about, and only
after checking that the copy, summarized the lean way, gives exactly what it printed. The lean
path uses the copy while every file, folder listing and store fact it came from is unchanged (the
store's published versions and API schedules among them), and computes the rest as the full path
does: fire times and descriptions with the triggers; schedule states, last runs and file-drop
ledgers read with ``sqlite3``. Anything it cannot vouch for (no copy, a stale one, a database
other than a SQLite file at the current schema, a fire time that cannot be computed now) gives
None: the caller then takes the full path, with its own errors and warnings.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from scheduler.definitions.listing_cache import (
    checked_paths,
    config_facts,
    definition_files,
    load_listing,
    save_listing,
    sources,
)
from scheduler.services.schedule_summary import Served, by_next_fire, summarize_served
from scheduler.services.schedule_view import ScheduleSummary, daemon_fields
from scheduler.store.sqlite_reads import SqliteReads, sqlite_file
from scheduler.triggers.time import fire_time_problems

if TYPE_CHECKING:
    from collections.abc import Callable

    from scheduler.definitions.config import Config
    from scheduler.definitions.schedules import ScheduleDef
    from scheduler.services.lean_pipelines import Published
    from scheduler.store import Store
    from scheduler.store.records import ScheduleState

SCHEDULES = "schedules"


# -- a schedule's fields as JSON ----------------------------------------------------------------


class LeanSchedule(SimpleNamespace):
    """A ``ScheduleDef``'s fields read back from JSON, with the properties the triggers and
    the summary read: enough to compute fire times and describe it, without its model."""

    @property
    def kind(self) -> str:
        return next(
            k
            for k in ("cron", "interval", "recurrence", "on_change")
            if getattr(self, k) is not None
        )

    @property
    def pipeline_name(self) -> str:
        return str(self.pipeline).partition("@")[0]

    @property
    def pipeline_version(self) -> str | None:
        return str(self.pipeline).partition("@")[2] or None

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def encode_fields(model: Any) -> dict[str, Any]:
    """A validated model's fields as JSON that ``decode_fields`` turns back into the same
    values: datetimes keep their zone, nested models their fields."""
    return {name: _encode(getattr(model, name)) for name in type(model).model_fields}


def _encode(value: Any) -> Any:
    if hasattr(type(value), "model_fields"):
        return ["model", encode_fields(value)]
    if isinstance(value, datetime):
        zone = value.tzinfo.key if isinstance(value.tzinfo, zoneinfo.ZoneInfo) else None
        return ["datetime", value.isoformat(), zone]
    if isinstance(value, (list, tuple)):
        return ["list", [_encode(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", {str(k): _encode(v) for k, v in value.items()}]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"{type(value).__name__} is not kept in a listing")


def decode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: _decode(value) for name, value in fields.items()}


def _decode(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    tag = value[0]
    if tag == "model":
        return SimpleNamespace(**decode_fields(value[1]))
    if tag == "datetime":
        moment = datetime.fromisoformat(value[1])
        return moment.astimezone(zoneinfo.ZoneInfo(value[2])) if value[2] else moment
    if tag == "list":
        return [_decode(v) for v in value[1]]
    if tag == "dict":
        return {k: _decode(v) for k, v in value[1].items()}
    raise ValueError(f"unknown tag {tag!r}")


def _served(entries: Sequence[dict[str, Any]]) -> list[Served] | None:
    try:
        return [
            Served(
                cast("ScheduleDef", LeanSchedule(**decode_fields(entry["schedule"]))),
                entry["source"],
                entry["definition"],
            )
            for entry in entries
        ]
    except (KeyError, TypeError, ValueError, IndexError, zoneinfo.ZoneInfoNotFoundError):
        return None


# -- what a listing is made from ----------------------------------------------------------------


def _published_facts(published: Iterable[Published]) -> list[list[str]]:
    return sorted([p.pipeline, p.version, p.content_hash, p.snapshot_dir] for p in published)


def _api_facts(states: Iterable[ScheduleState]) -> list[list[str]]:
    return [[s.name, json.dumps(s.definition, sort_keys=True)] for s in states]


# -- schedules ----------------------------------------------------------------------------------


def _schedule_facts(
    config: Config, published: Iterable[Published], api: Iterable[ScheduleState]
) -> dict[str, Any]:
    return {
        "config": config_facts(config),
        "published": _published_facts(published),
        "api": _api_facts(api),
    }


def cached_schedules(config: Config, now: datetime) -> list[ScheduleSummary] | None:
    """Every schedule summarized at ``now`` from the cached listing, as ``schedule_summary.
    collect`` would; None when the listing cannot be vouched for."""
    reads = SqliteReads.open(config.database_url)
    if reads is None:
        return None
    with reads:
        facts = _schedule_facts(config, reads.list_published(), reads.api_schedules())
        listing = load_listing(SCHEDULES, config.file, facts)
        if listing is None:
            return None
        served = _served(listing.get("schedules", []))
        if served is None:
            return None
        if any(fire_time_problems(entry.schedule, now) for entry in served):
            return None  # the full path says why
        return summarize_served(reads, served, now)


def gather_schedules(
    config: Config, store: Store, now: datetime, *, warn: Callable[[str], None]
) -> list[ScheduleSummary]:
    """``schedule_summary.collect``, then the listing kept for ``cached_schedules`` when
    nothing was left out and the lean summaries match."""
    # lazy: the full path's checks, loaded only when the cached listing was not used
    from scheduler.definitions import discover_pipelines
    from scheduler.services.pipelines import check_pipeline
    from scheduler.services.schedule_summary import gather

    api = store.api_schedules()
    published = store.list_published()
    files, folders = definition_files(config)
    if api:  # an API schedule may run a published version: its snapshot must still be there
        folders += [str(p.snapshot_dir) for p in published]
    # Read before validating: an edit meanwhile makes the listing stale, never wrong.
    recorded = sources(files, folders, [], _schedule_facts(config, published, api))
    # API schedules run pipelines that must load: what their validity rests on counts too.
    checks = [check_pipeline(config, p) for p in discover_pipelines(config).values()] if api else []
    gathered = gather(config, store, now, warn=warn)
    checked = checked_paths((c.folders, c.files) for c in checks if not c.errors)
    if not gathered.clean or checked is None or sqlite_file(config.database_url) is None:
        return gathered.summaries  # nothing the lean path could vouch for
    try:
        entries = json.loads(
            json.dumps(
                [
                    {
                        "schedule": encode_fields(e.schedule),
                        "source": e.source,
                        "definition": e.definition,
                    }
                    for e in gathered.served
                ]
            )
        )
    except (TypeError, ValueError):
        return gathered.summaries
    served = _served(entries)
    if served is not None and _shown(summarize_served(store, served, now)) == _shown(
        gathered.summaries
    ):
        recorded["checked"] = dict(sorted(checked.items()))
        listing = {"sources": recorded, "schedules": entries}
        save_listing(SCHEDULES, config.file, listing)
    return gathered.summaries


def _shown(summaries: list[ScheduleSummary]) -> list[dict[str, Any]]:
    return [s.to_json() | daemon_fields(s) for s in by_next_fire(summaries)]
