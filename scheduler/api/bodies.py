"""What the REST API's run requests carry and answer, in Azure ML's shapes: the
published-pipeline request body, its answer, and a bad parameter as a 422 naming the field where
the client put it. Shared by the client paths (``rest``) and the SDK's (``sdk_routes``)."""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

from scheduler.api.control import parameter_problem
from scheduler.api.limits import MAX_NAME, MAX_TEXT
from scheduler.core.errors import ParameterError
from scheduler.store.records import AZURE_STATUS_CODES, RunRecord

STATUS_CODES = AZURE_STATUS_CODES
MAX_PARAMETERS = 1000
ParameterName = Annotated[str, StringConstraints(max_length=MAX_NAME)]


class DataPath(BaseModel):
    """Azure ML's data path assignment: a file or folder in a datastore."""

    DataStoreName: str = Field(min_length=1, max_length=MAX_NAME)
    RelativePath: str = Field(max_length=MAX_TEXT)


# The assignment's field is named after the class, as in Azure's body.
_DataPathBody = DataPath


class DatasetReference(BaseModel):
    """Azure ML's reference to a saved dataset; here a dataset's id is its datastore path."""

    model_config = ConfigDict(extra="ignore")

    Id: str = Field(min_length=1, max_length=MAX_TEXT)


class DatasetAssignment(BaseModel):
    """Azure ML's dataset definition value: a saved dataset by id, or a data path."""

    model_config = ConfigDict(extra="ignore")

    SavedDataSetReference: DatasetReference | None = None
    DataSetReference: DatasetReference | None = None
    DataPath: _DataPathBody | None = None


class SubmitBody(BaseModel):
    """Azure ML's published-pipeline request body; fields Azure sends that mean nothing here
    (``RunSource``, ``Description``...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    ExperimentName: str | None = Field(default=None, pattern=r"^\s*\S", max_length=MAX_NAME)
    ParameterAssignments: dict[ParameterName, Any] = Field(
        default_factory=dict, max_length=MAX_PARAMETERS
    )
    DataPathAssignments: dict[ParameterName, DataPath] = Field(
        default_factory=dict, max_length=MAX_PARAMETERS
    )
    DataSetDefinitionValueAssignments: dict[ParameterName, DatasetAssignment] = Field(
        default_factory=dict, max_length=MAX_PARAMETERS
    )
    # Strict: a JSON 0 or "false" is refused with 422, never coerced.
    ContinueRunOnStepFailure: StrictBool | None = None
    # pipesched's own (the SDK's submit(regenerate_outputs=True)): run every step, reuse nothing.
    RegenerateOutputs: StrictBool = False

    @field_validator("ParameterAssignments")
    @classmethod
    def _values_bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, given in value.items():
            text = given if isinstance(given, str) else json.dumps(given)
            if len(text) > MAX_TEXT:
                raise ValueError(
                    f"parameter '{name}' has {len(text)} characters; at most {MAX_TEXT}"
                )
        return value


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
    if exc.name in body.DataPathAssignments:
        where = "DataPathAssignments"
    elif exc.name in body.DataSetDefinitionValueAssignments:
        where = "DataSetDefinitionValueAssignments"
    else:
        where = "ParameterAssignments"
    raise HTTPException(422, detail=[parameter_problem(exc, ("body", where))]) from exc


def body_parameters(body: SubmitBody) -> dict[str, Any]:
    """ParameterAssignments plus DataPathAssignments as ``datastore://`` paths."""
    parameters = dict(body.ParameterAssignments)
    for param, where in body.DataPathAssignments.items():
        if param in parameters:
            clash = ParameterError(
                f"parameter '{param}' is given in both ParameterAssignments and "
                "DataPathAssignments",
                name=param,
            )
            raise_parameter(clash, body)
        parameters[param] = f"datastore://{where.DataStoreName}/{where.RelativePath}"
    for param, dataset in body.DataSetDefinitionValueAssignments.items():
        loc = ("body", "DataSetDefinitionValueAssignments", param)
        if param in parameters:
            raise HTTPException(
                422,
                detail=[
                    problem(loc, f"parameter '{param}' is given twice in the body", "value_error")
                ],
            )
        parameters[param] = _dataset_path(dataset, loc)
    return parameters


def _dataset_path(dataset: DatasetAssignment, loc: tuple[str, ...]) -> str:
    """The ``datastore://`` path a dataset assignment stands for: a data path, or a dataset
    id, which here is the dataset's datastore path (the SDK's ``dataset.id``)."""
    if dataset.DataPath is not None:
        return f"datastore://{dataset.DataPath.DataStoreName}/{dataset.DataPath.RelativePath}"
    reference = dataset.SavedDataSetReference or dataset.DataSetReference
    if reference is not None and reference.Id.startswith("datastore://"):
        return reference.Id
    msg = (
        "pipesched has no dataset registry: a dataset's id is its datastore path "
        "(datastore://NAME/path, the SDK's dataset.id); or send DataPathAssignments"
    )
    raise HTTPException(422, detail=[problem(loc, msg, "value_error")])


def submit_answer(request: Request, run: RunRecord) -> SubmitAnswer:
    return SubmitAnswer(
        Id=run.id,
        Status=RunStatusCode(StatusCode=STATUS_CODES.get(run.status, run.status)),
        ExperimentName=run.experiment,
        url=str(request.url_for("get_run", run_id=run.id)),
    )
