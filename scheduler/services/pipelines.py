"""The pipelines a user can run: the working copies under ``pipelines_dir`` and the published
versions of each (with the one its endpoint runs and the URLs that start runs), and the check
that a name given over HTTP is one of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import DefinitionError, DefinitionErrors, NotFound, PipeschedError
from scheduler.definitions import discover_pipelines, load_pipeline
from scheduler.services.pipeline_view import working_copy_fields
from scheduler.services.publish import PublishedVersion, endpoint_url, list_versions

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store


@dataclass(frozen=True)
class PipelineEntry:
    """One pipeline: ``path`` is its working copy's pipeline.yaml (None when only published
    versions are left), ``versions`` in publishing order, ``endpoint`` the URL that runs the
    default version (the working copy while nothing is published)."""

    name: str
    path: Path | None
    versions: tuple[PublishedVersion, ...]
    endpoint: str
    version_urls: dict[str, str] = field(default_factory=dict)

    @property
    def default_version(self) -> str | None:
        return next((v.version for v in self.versions if v.is_default), None)


@dataclass(frozen=True)
class PipelineCheck:
    """A working copy as loaded now: ``errors`` empty when it is valid. A valid one also names
    what its validity rests on besides its file: the step folders (``folders``) and the files in
    them (``files``) that had to exist."""

    description: str | None
    steps: tuple[str, ...]
    errors: tuple[str, ...]
    folders: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


def list_pipelines(config: Config, store: Store) -> list[PipelineEntry]:
    """The working copies in discovery order, then pipelines that have only published versions
    left, by name."""
    published = list_versions(store)
    found = discover_pipelines(config)
    names = [*found, *sorted({p.pipeline for p in published} - set(found))]
    entries = []
    for name in names:
        versions = tuple(p for p in published if p.pipeline == name)
        entries.append(
            PipelineEntry(
                name=name,
                path=found.get(name),
                versions=versions,
                endpoint=endpoint_url(config, name, None),
                version_urls={v.version: endpoint_url(config, name, v.version) for v in versions},
            )
        )
    return entries


def check_pipeline(config: Config, path: Path) -> PipelineCheck:
    """Load a working copy: its description and step ids, or every error of its file."""
    try:
        pipeline = load_pipeline(path, config)
    except DefinitionErrors as exc:
        return PipelineCheck(None, (), tuple(str(e) for e in exc.errors))
    except (DefinitionError, PipeschedError) as exc:
        return PipelineCheck(None, (), (str(exc),))
    steps = pipeline.steps.values()
    return PipelineCheck(
        pipeline.description,
        tuple(pipeline.steps),
        (),
        folders=tuple(str(step.source_directory) for step in steps),
        files=tuple(
            str(step.source_directory / getattr(step, field))
            for step in steps
            for field in step.FILES
        ),
    )


def entry_fields(config: Config, entry: PipelineEntry) -> dict[str, Any]:
    """The working copy's part of a ``pipelines --json`` object (see
    ``pipeline_view.working_copy_fields``), checked now."""
    if entry.path is None:
        return working_copy_fields(None, None, (), ())
    check = check_pipeline(config, entry.path)
    return working_copy_fields(entry.path, check.description, check.steps, check.errors)


def check_pipeline_name(config: Config, store: Store, name: str) -> None:
    """Only a declared or published pipeline: a path to a pipeline.yaml, which the definition
    loader also takes, must never be nameable over HTTP."""
    if name not in discover_pipelines(config) and not list_versions(store, name):
        raise NotFound(f"no pipeline named '{name}'", hint="GET /api/v1/pipelines lists them")
