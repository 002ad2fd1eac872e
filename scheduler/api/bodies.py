"""What the REST API's run requests carry and answer, in Azure ML's shapes: the
published-pipeline request body, its answer, and a bad parameter as a 422 naming the field where
the client put it. Shared by the client paths (``rest``) and the SDK's (``sdk_routes``)."""

from __future__ import annotations

from typing import Any, NoReturn

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from scheduler.api.control import parameter_problem
from scheduler.core.errors import ParameterError
from scheduler.store.records import AZURE_STATUS_CODES, RunRecord

STATUS_CODES = AZURE_STATUS_CODES


class DataPath(BaseModel):
    """Azure ML's data path assignment: a file or folder in a datastore."""

    DataStoreName: str = Field(min_length=1)
    RelativePath: str


class SubmitBody(BaseModel):
    """Azure ML's published-pipeline request body; fields Azure sends that mean nothing here
    (``RunSource``, ``Description``...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    ExperimentName: str | None = Field(default=None, pattern=r"^\s*\S")
    ParameterAssignments: dict[str, Any] = Field(default_factory=dict)
    DataPathAssignments: dict[str, DataPath] = Field(default_factory=dict)
    ContinueRunOnStepFailure: bool | None = None
    # pipesched's own (the SDK's submit(regenerate_outputs=True)): run every step, reuse nothing.
    RegenerateOutputs: bool = False


class RunStatusCode(BaseModel):
    StatusCode: str


class SubmitAnswer(BaseModel):
    """The fields of Azure ML's run record that clients read, plus the run's own URL."""

    Id: str
    Status: RunStatusCode
    ExperimentName: str
    url: str


def problem(loc: tuple[str, ...], msg: str, kind: str) -> dict[str, Any]:
    """One problem in FastAPI's own 422 shape."""
    return {"loc": list(loc), "msg": msg, "type": kind}


def raise_parameter(exc: ParameterError, body: SubmitBody) -> NoReturn:
    """A 422 naming the field where the client put the bad parameter."""
    where = (
        "DataPathAssignments" if exc.name in body.DataPathAssignments else "ParameterAssignments"
    )
    raise HTTPException(422, detail=[parameter_problem(exc, ("body", where))]) from exc


def body_parameters(body: SubmitBody) -> dict[str, Any]:
    """ParameterAssignments plus DataPathAssignments as ``datastore://`` paths."""
    parameters = dict(body.ParameterAssignments)
    for param, where in body.DataPathAssignments.items():
        if param in parameters:
            problem = ParameterError(
                f"parameter '{param}' is given in both ParameterAssignments and "
                "DataPathAssignments",
                name=param,
            )
            raise_parameter(problem, body)
        parameters[param] = f"datastore://{where.DataStoreName}/{where.RelativePath}"
    return parameters


def submit_answer(request: Request, run: RunRecord) -> SubmitAnswer:
    return SubmitAnswer(
        Id=run.id,
        Status=RunStatusCode(StatusCode=STATUS_CODES.get(run.status, run.status)),
        ExperimentName=run.experiment,
        url=str(request.url_for("get_run", run_id=run.id)),
    )
