"""``pipesched pipelines`` without pydantic or the ORM, from a cached copy of what the full
loaders made (``definitions.listing_cache``).

The full path checks every working copy, then keeps each one's description, steps and status as
plain JSON, only when every one is valid and only after checking that the copy, with the store's
published versions, gives exactly what it printed. The lean path uses the copy while every file,
folder listing and step file it came from is unchanged, and reads the published versions with
``sqlite3``; anything it cannot vouch for gives None, and the caller takes the full path.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from scheduler.core.clock import iso
from scheduler.definitions.listing_cache import (
    checked_paths,
    config_facts,
    definition_files,
    load_listing,
    save_listing,
    sources,
)
from scheduler.services.pipeline_view import working_copy_fields
from scheduler.store.sqlite_reads import PublishedEntry, SqliteReads, sqlite_file

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store

PIPELINES = "pipelines"


class Published(Protocol):
    """A published version as the store lists it (``PublishedRecord`` or ``PublishedEntry``)."""

    @property
    def pipeline(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def snapshot_dir(self) -> str: ...
    @property
    def published_at(self) -> datetime: ...
    @property
    def is_default(self) -> bool: ...


# -- pipelines ----------------------------------------------------------------------------------


def _pipeline_facts(config: Config) -> dict[str, Any]:
    # An API host of 0.0.0.0 or :: shows as this machine's name in the endpoint URLs.
    return {"config": config_facts(config), "host": socket.gethostname()}


def cached_pipelines(config: Config) -> list[dict[str, Any]] | None:
    """The ``pipelines --json`` objects from the cached listing and the store's published
    versions; None when the listing cannot be vouched for."""
    reads = SqliteReads.open(config.database_url)
    if reads is None:
        return None
    with reads:
        published = reads.list_published()
    listing = load_listing(PIPELINES, config.file, _pipeline_facts(config))
    if listing is None:
        return None
    try:
        working = listing["working"]
        # A folder that is a link may point elsewhere now, with the same file there.
        if any(os.path.realpath(w["file"]) != w["fields"]["path"] for w in working):
            return None
        return pipeline_entries(working, published, listing["origin"])
    except (KeyError, TypeError, ValueError):
        return None


def pipeline_entries(
    working: list[dict[str, Any]], published: Sequence[Published], origin: str
) -> list[dict[str, Any]]:
    """The working copies (``{name, fields}`` in discovery order) then the pipelines that have
    only published versions left, by name, each with its versions and endpoint URLs."""
    fields = {w["name"]: w["fields"] for w in working}
    names = [*fields, *sorted({p.pipeline for p in published} - set(fields))]
    entries = []
    for name in names:
        versions = [p for p in published if p.pipeline == name]
        entries.append(
            {
                "name": name,
                **fields.get(name, working_copy_fields(None, None, (), ())),
                "versions": [
                    {**_version_json(v), "url": _endpoint(origin, name, v.version)}
                    for v in versions
                ],
                "default_version": next((v.version for v in versions if v.is_default), None),
                "endpoint": _endpoint(origin, name, None),
            }
        )
    return entries


def _version_json(version: Published) -> dict[str, Any]:
    """``PublishedVersion.to_json``."""
    return {
        "id": f"{version.pipeline}@{version.version}",
        "pipeline": version.pipeline,
        "version": version.version,
        "description": version.description,
        "content_hash": version.content_hash,
        "published_at": iso(version.published_at),
        "is_default": version.is_default,
        "snapshot_dir": str(Path(version.snapshot_dir)),
    }


def _endpoint(origin: str, pipeline: str, version: str | None) -> str:
    """``publish.endpoint_url`` on a known origin."""
    path = f"/api/v1/pipelines/{urllib.parse.quote(pipeline, safe='')}"
    if version is not None:
        path += f"/versions/{urllib.parse.quote(version, safe='')}"
    return f"{origin}{path}/runs"


def list_pipeline_entries(config: Config, store: Store) -> list[dict[str, Any]]:
    """The ``pipelines --json`` objects, checked now; then the listing kept for
    ``cached_pipelines`` when every working copy is valid and the lean entries match."""
    # lazy: the full path's checks, loaded only when the cached listing was not used
    from scheduler.services.pipelines import check_pipeline, list_pipelines
    from scheduler.services.publish import endpoint_url

    # Read before checking: an edit meanwhile makes the listing stale, never wrong.
    recorded = sources(*definition_files(config), [], _pipeline_facts(config))
    found = list_pipelines(config, store)
    entries: list[dict[str, Any]] = []
    working: list[dict[str, Any]] = []
    checks = []
    for entry in found:
        if entry.path is None:
            own = working_copy_fields(None, None, (), ())
        else:
            check = check_pipeline(config, entry.path)
            checks.append(check)
            own = working_copy_fields(entry.path, check.description, check.steps, check.errors)
            working.append({"name": entry.name, "file": str(entry.path), "fields": own})
        entries.append(
            {
                "name": entry.name,
                **own,
                "versions": [
                    {**v.to_json(), "url": entry.version_urls[v.version]} for v in entry.versions
                ],
                "default_version": entry.default_version,
                "endpoint": entry.endpoint,
            }
        )
    checked = checked_paths((c.folders, c.files) for c in checks)
    if checked is None or any(c.errors for c in checks) or sqlite_file(config.database_url) is None:
        return entries  # nothing the lean path could vouch for
    origin = endpoint_url(config, "p", None).removesuffix("/api/v1/pipelines/p/runs")
    published = [
        PublishedEntry(
            pipeline=p.pipeline,
            version=p.version,
            description=p.description,
            content_hash=p.content_hash,
            snapshot_dir=str(p.snapshot_dir),
            published_at=p.published_at,
            is_default=p.is_default,
        )
        for e in found
        for p in e.versions
    ]
    working = json.loads(json.dumps(working))
    if pipeline_entries(working, published, origin) == entries:
        recorded["checked"] = dict(sorted(checked.items()))
        listing = {
            "sources": recorded,
            "working": working,
            "origin": origin,
        }
        save_listing(PIPELINES, config.file, listing)
    return entries
