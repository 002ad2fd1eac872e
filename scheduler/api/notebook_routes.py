"""REST paths for what Azure ML notebooks do beyond running and publishing pipelines: pipeline
drafts (Azure's ``PipelineDraft``: make, list, read, change, delete, run, publish) and a step's
outputs with the datastore that holds each one (``StepRun.get_outputs``). Same token rule and
error shapes as the rest of ``/api/v1``: a missing draft or run is 404, a state that forbids the
change 409, a parameter value the draft's pipeline refuses 422 naming it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

from scheduler.api.bodies import MAX_PARAMETERS, SubmitAnswer, submit_answer
from scheduler.api.control import API_PREFIX, DaemonControl, parameter_problem
from scheduler.api.limits import MAX_NAME, MAX_TEXT
from scheduler.core.errors import ParameterError
from scheduler.services import drafts as draft_service
from scheduler.services.outputs import step_outputs
from scheduler.services.publish import endpoint_url

if TYPE_CHECKING:
    from scheduler.definitions.config import Config
    from scheduler.store import Store

log = structlog.get_logger("scheduler.api.rest")

MAX_TAGS = 100
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
DraftId = Annotated[
    str, PathParam(pattern=draft_service.DRAFT_ID.pattern, description="a draft's GUID")
]
Tags = Annotated[dict[Name, Text], Field(max_length=MAX_TAGS)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FromSnapshot(_Closed):
    snapshot: str = Field(
        pattern=r"^[0-9a-f]{8,64}$", description="a snapshot id from POST /api/v1/snapshots"
    )


class FromRun(_Closed):
    run: Name = Field(description="a run id (any unique prefix): the draft holds what it ran")


class FromPublished(_Closed):
    pipeline: Name
    version: Name


class FromDraft(_Closed):
    draft: str = Field(pattern=draft_service.DRAFT_ID.pattern, description="a draft to copy")


class DraftFields(_Closed):
    """What a draft holds besides its pipeline; left out (or null): unchanged, or for a new
    draft the pipeline's own (name, experiment, description)."""

    name: Name | None = None
    description: Text | None = None
    experiment_name: Name | None = None
    pipeline_parameters: dict[Name, Any] | None = Field(default=None, max_length=MAX_PARAMETERS)
    # Strict: a JSON 0 or "false" is refused with 422, never coerced.
    continue_on_step_failure: StrictBool | None = None
    tags: Tags | None = None

    @field_validator("pipeline_parameters")
    @classmethod
    def _values_bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for name, given in (value or {}).items():
            text = given if isinstance(given, str) else json.dumps(given)
            if len(text) > MAX_TEXT:
                raise ValueError(
                    f"parameter '{name}' has {len(text)} characters; at most {MAX_TEXT}"
                )
        return value

    def given(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in self.model_dump(exclude={"source", "properties"}).items()
            if v is not None
        }


class CreateDraftBody(DraftFields):
    source: FromSnapshot | FromRun | FromPublished | FromDraft = Field(
        description="the pipeline of the draft: an uploaded snapshot, what a run ran, a "
        "published version, or another draft's"
    )
    properties: Tags | None = None


class UpdateDraftBody(DraftFields):
    snapshot: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{8,64}$", description="a new pipeline for the draft"
    )


def notebook_router(control: DaemonControl, store: Store, config: Config) -> APIRouter:
    """The ``/api/v1`` paths of pipeline drafts and of a step's outputs."""
    router = APIRouter(prefix=API_PREFIX)

    @router.post("/drafts", status_code=201, tags=["drafts"])
    def create_draft(body: CreateDraftBody) -> dict:
        """Make a draft: of an uploaded snapshot (name and experiment default to the
        pipeline's), of what a run ran, of a published version, or a copy of another draft."""
        with _parameter_answers(("body", "pipeline_parameters")):
            draft = _create(config, store, body)
        log.info("draft_created", draft=draft.id, pipeline=draft.pipeline)
        return draft.to_json()

    @router.get("/drafts", tags=["drafts"])
    def list_drafts() -> list[dict]:
        """Every draft, oldest first."""
        return [d.to_json() for d in draft_service.list_drafts(config)]

    @router.get("/drafts/{draft_id}", tags=["drafts"])
    def get_draft(draft_id: DraftId) -> dict:
        return draft_service.get_draft(config, draft_id).to_json()

    @router.patch("/drafts/{draft_id}", tags=["drafts"])
    def update_draft(draft_id: DraftId, body: UpdateDraftBody) -> dict:
        """Change the fields given; ``snapshot`` gives the draft a new pipeline."""
        with _parameter_answers(("body", "pipeline_parameters")):
            return draft_service.update_draft(config, draft_id, body.given()).to_json()

    @router.delete("/drafts/{draft_id}", status_code=204, tags=["drafts"])
    def delete_draft(draft_id: DraftId) -> Response:
        draft_service.delete_draft(config, draft_id)
        return Response(status_code=204)

    @router.post("/drafts/{draft_id}/runs", status_code=202, tags=["drafts"])
    async def submit_draft(request: Request, draft_id: DraftId) -> SubmitAnswer:
        """Run the draft's pipeline with its experiment, parameter values and settings; the
        draft remembers the run (``last_submitted_pipeline_run_id``)."""
        draft = await asyncio.to_thread(draft_service.get_draft, config, draft_id)
        definition = await asyncio.to_thread(draft_service.draft_definition, config, draft)
        with _parameter_answers(("path", "draft_id")):
            run = await control.submit_definition_run(
                definition,
                None,
                dict(draft.pipeline_parameters),
                draft.experiment_name,
                draft.continue_on_step_failure,
            )
        await asyncio.to_thread(draft_service.record_submitted, config, draft.id, run.id)
        log.info("draft_run_submitted", draft=draft.id, run_id=run.id)
        return submit_answer(request, run)

    @router.post("/drafts/{draft_id}/publish", status_code=201, tags=["drafts"])
    def publish_draft(draft_id: DraftId) -> dict:
        """Publish the draft's pipeline as the next version of the pipeline named after the
        draft; 409 when that name cannot name a pipeline."""
        published = draft_service.publish_draft(config, store, draft_id)
        return {
            **published.to_json(),
            "endpoint": endpoint_url(config, published.pipeline, published.version),
        }

    @router.get("/runs/{run_id}/steps/{step}/outputs", tags=["runs"])
    def list_step_outputs(run_id: str, step: str) -> list[dict]:
        """A step's outputs: each one's folder, datastore and path in that datastore."""
        return [o.to_json() for o in step_outputs(config, store, run_id, step)]

    return router


def _create(config: Config, store: Store, body: CreateDraftBody) -> draft_service.Draft:
    source: dict[str, str] = body.source.model_dump()
    return draft_service.new_draft(config, store, source, body.given(), body.properties)


@contextmanager
def _parameter_answers(where: tuple[str, ...]) -> Iterator[None]:
    """A ParameterError as a 422 naming where the value came from."""
    try:
        yield
    except ParameterError as exc:
        raise HTTPException(422, detail=[parameter_problem(exc, where)]) from exc
