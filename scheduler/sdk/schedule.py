"""Azure ML's ``Schedule`` and ``ScheduleRecurrence``: schedules created from code, kept in the
store (``source: api``) beside those of schedules.yaml, served by a running daemon at once.

A ``Schedule.create`` call becomes one schedules.yaml entry (a ``recurrence:`` or
``on_change:``), validated by the same code as the file; its errors name the notebook line
that made the call.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from scheduler.core.errors import (
    DefinitionError,
    DefinitionErrors,
    NotFound,
    ParameterError,
    SourcePosition,
)
from scheduler.sdk._warn import SdkError, ignore_given
from scheduler.sdk.backfill import Backfill, start_backfill
from scheduler.sdk.datapath import path_default
from scheduler.sdk.published import PipelineEndpoint
from scheduler.sdk.recurrence import ScheduleRecurrence, _caller, _invalid
from scheduler.services.daemon_http import InvalidRequest

if TYPE_CHECKING:
    from scheduler.sdk.runs import PipelineRun
    from scheduler.sdk.workspace import Workspace

DEFAULT_WAIT_TIMEOUT = 3600  # Azure's wait_timeout default (seconds)
STATUSES = ("Active", "Disabled")


class _NotGiven:
    """``polling_interval`` left out: watch with inotify (Azure polls every 5 minutes)."""

    def __repr__(self) -> str:
        return "<not given: inotify>"


NOT_GIVEN: Any = _NotGiven()


class Schedule:
    """A schedule of the workspace (from schedules.yaml or created here); ``id`` stays the same
    across updates and renames."""

    def __init__(self, workspace: Workspace, data: dict[str, Any], definition: dict | None = None):
        self._workspace = workspace
        self._data = data
        self._definition = definition or data.get("definition") or {}

    # -- creating -----------------------------------------------------------------------------

    @staticmethod
    def create(
        workspace: Workspace,
        name: str,
        pipeline_id: str,
        experiment_name: str,
        recurrence: ScheduleRecurrence | None = None,
        description: str | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        wait_for_provisioning: bool = False,
        wait_timeout: int = 3600,
        datastore: Any = None,
        polling_interval: Any = NOT_GIVEN,
        data_path_parameter_name: str | None = None,
        continue_on_step_failure: bool | None = None,
        path_on_datastore: str | None = None,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
        _pipeline_endpoint_id: str | None = None,
    ) -> Schedule:
        """A time schedule (``recurrence``) or a file-drop schedule (``datastore`` +
        ``path_on_datastore``) that runs ``pipeline_id`` (``NAME@VERSION`` or a pipeline name).
        ``polling_interval`` (minutes) makes a file-drop schedule poll instead of using inotify;
        leaving it out means inotify (Azure polls every 5 minutes by default)."""
        pipeline = getattr(pipeline_id, "id", pipeline_id)
        _ignore_waiting("Schedule.create", wait_for_provisioning, wait_timeout)
        ignore_given(
            "Schedule.create",
            {"continue_on_step_failure": continue_on_step_failure},
            {"continue_on_step_failure": "a schedule runs the pipeline as it is defined"},
        )
        if (recurrence is None) == (datastore is None):
            raise _invalid(
                "Schedule.create: give either recurrence= (a time schedule) or datastore= "
                "(a file-drop schedule)"
            )
        definition: dict[str, Any] = {
            "name": name,
            "pipeline": pipeline,
            "experiment": experiment_name,
        }
        if description is not None:
            definition["description"] = description
        if _pipeline_endpoint_id is not None:
            definition["pipeline_endpoint_id"] = _pipeline_endpoint_id
        if pipeline_parameters:
            definition["parameters"] = {k: _parameter(v) for k, v in pipeline_parameters.items()}
        if recurrence is not None:
            if datastore is None and (path_on_datastore or data_path_parameter_name):
                raise _invalid("Schedule.create: path_on_datastore needs datastore=")
            definition["recurrence"] = recurrence._to_definition()
        else:
            definition["on_change"] = _on_change(
                datastore, path_on_datastore, polling_interval, data_path_parameter_name
            )
        return Schedule._create(workspace, definition)

    @staticmethod
    def create_for_pipeline_endpoint(
        workspace: Workspace,
        name: str,
        pipeline_endpoint_id: str,
        experiment_name: str,
        recurrence: ScheduleRecurrence | None = None,
        description: str | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        wait_for_provisioning: bool = False,
        wait_timeout: int = 3600,
        datastore: Any = None,
        polling_interval: Any = NOT_GIVEN,
        data_path_parameter_name: str | None = None,
        continue_on_step_failure: bool | None = None,
        path_on_datastore: str | None = None,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
    ) -> Schedule:
        """As ``create``, for an endpoint (its id, its name, or the PipelineEndpoint): the
        schedule runs the published pipeline that is the endpoint's default now, named as
        ``NAME@VERSION`` (a later ``set_default`` does not move it)."""
        wanted = str(getattr(pipeline_endpoint_id, "id", pipeline_endpoint_id))
        endpoint_id: str | None
        try:
            endpoint = PipelineEndpoint.get(workspace, id=wanted)
            pipeline_id, endpoint_id = endpoint.get_pipeline().id, endpoint.id
        except NotFound:  # a pipeline with no endpoint: its working copy, as schedules.yaml
            pipeline_id = endpoint_id = wanted.partition("@")[0]
        return Schedule.create(
            workspace,
            name,
            pipeline_id,
            experiment_name,
            recurrence=recurrence,
            description=description,
            pipeline_parameters=pipeline_parameters,
            wait_for_provisioning=wait_for_provisioning,
            wait_timeout=wait_timeout,
            datastore=datastore,
            polling_interval=polling_interval,
            data_path_parameter_name=data_path_parameter_name,
            continue_on_step_failure=continue_on_step_failure,
            path_on_datastore=path_on_datastore,
            _pipeline_endpoint_id=endpoint_id,
        )

    @staticmethod
    def _create(workspace: Workspace, definition: dict[str, Any]) -> Schedule:
        """Errors about the call's arguments point at the user's line; an error about a file
        (a pipeline.yaml, schedules.yaml) keeps naming that file."""
        with _errors_at(_caller()):
            data = workspace._backend.create_schedule(definition)
        return Schedule(workspace, data, definition)

    # -- finding ------------------------------------------------------------------------------

    @staticmethod
    def list(
        workspace: Workspace,
        active_only: bool = True,
        pipeline_id: str | None = None,
        pipeline_endpoint_id: str | None = None,
        _workflow_provider: Any = None,
        _service_endpoint: Any = None,
    ) -> list[Schedule]:
        """Every schedule of the workspace (schedules.yaml's and those created here)."""
        found = []
        for data in workspace._backend.list_schedules():
            if active_only and not data["enabled"]:
                continue
            if pipeline_id is not None and data["pipeline"] != pipeline_id:
                continue
            schedule = Schedule(workspace, data)
            if (
                pipeline_endpoint_id is not None
                and schedule.pipeline_endpoint_id != pipeline_endpoint_id
            ):
                continue
            found.append(schedule)
        return found

    @staticmethod
    def get(
        workspace: Workspace, id: str, _workflow_provider: Any = None, _service_endpoint: Any = None
    ) -> Schedule:
        """By its stable ``id`` or by its name."""
        for data in workspace._backend.list_schedules():
            if data.get("id") == id:
                return Schedule(workspace, data)
        return Schedule(workspace, workspace._backend.get_schedule(id))

    @staticmethod
    def get_schedules_for_pipeline_id(
        workspace: Workspace, pipeline_id: str
    ) -> builtins.list[Schedule]:
        return Schedule.list(workspace, active_only=False, pipeline_id=pipeline_id)

    @staticmethod
    def get_schedules_for_pipeline_endpoint_id(
        workspace: Workspace, pipeline_endpoint_id: str
    ) -> builtins.list[Schedule]:
        return Schedule.list(
            workspace, active_only=False, pipeline_endpoint_id=pipeline_endpoint_id
        )

    # -- what it is ---------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Stable: an update, even a rename, keeps it (the name for a schedule the store has
        not registered yet)."""
        return self._data.get("id") or self._data["name"]

    @property
    def name(self) -> str:
        return self._data["name"]

    @property
    def description(self) -> str | None:
        return self._data.get("description")

    @property
    def status(self) -> str:
        return "Active" if self._data["enabled"] else "Disabled"

    @property
    def pipeline_id(self) -> str:
        return self._data["pipeline"]

    @property
    def pipeline_endpoint_id(self) -> str | None:
        """The endpoint's id for a schedule made by ``create_for_pipeline_endpoint``, else None."""
        kept = (self._data.get("definition") or self._definition).get("pipeline_endpoint_id")
        return str(kept) if kept is not None else None

    @property
    def recurrence(self) -> ScheduleRecurrence | None:
        """Known for a schedule created in this session, or when the backend reports its
        definition; None for other kinds."""
        data = self._definition.get("recurrence")
        zone = self._definition.get("timezone")
        return ScheduleRecurrence._from_definition(data, zone) if data else None

    @property
    def datastore_name(self) -> str | None:
        return (self._data.get("watch") or {}).get("datastore")

    @property
    def path_on_datastore(self) -> str | None:
        return (self._data.get("watch") or {}).get("path")

    @property
    def data_path_parameter_name(self) -> str | None:
        return (self._definition.get("on_change") or {}).get("data_path_parameter")

    @property
    def next_fire_times(self) -> builtins.list[datetime]:
        """The next fire times, in the schedule's own zone (pipesched's addition)."""
        return [datetime.fromisoformat(t) for t in self._data["next_fire_times"]]

    def _refresh(self, data: dict[str, Any]) -> None:
        self._data = data
        self._definition = data.get("definition") or self._definition

    # -- changing -----------------------------------------------------------------------------

    def enable(self, wait_for_provisioning: bool = False, wait_timeout: int = 3600) -> None:
        _ignore_waiting("Schedule.enable", wait_for_provisioning, wait_timeout)
        self._refresh(self._workspace._backend.set_schedule_enabled(self.name, True))

    def disable(self, wait_for_provisioning: bool = False, wait_timeout: int = 3600) -> None:
        _ignore_waiting("Schedule.disable", wait_for_provisioning, wait_timeout)
        self._refresh(self._workspace._backend.set_schedule_enabled(self.name, False))

    def delete(self) -> None:
        """Remove a schedule created through the API or SDK (pipesched's addition: Azure only
        disables). The fire history stays."""
        self._workspace._backend.delete_schedule(self.name)

    def update(
        self,
        name: str | None = None,
        description: str | None = None,
        recurrence: ScheduleRecurrence | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        status: str | None = None,
        wait_for_provisioning: bool = False,
        wait_timeout: int = 3600,
        datastore: Any = None,
        polling_interval: int | None = None,
        data_path_parameter_name: str | None = None,
        continue_on_step_failure: bool | None = None,
        path_on_datastore: str | None = None,
    ) -> None:
        """Azure's signature: change the name, description, recurrence, pipeline parameters,
        status ("Active"/"Disabled") or datastore settings. The schedule keeps its ``id``, its
        fire history and the runs it started (a new name takes them along). The new definition
        is checked as a new schedule is, before anything changes."""
        if status is not None and status not in STATUSES:
            raise SdkError(
                f"Schedule.update: status must be 'Active' or 'Disabled' (got {status!r})"
            )
        _ignore_waiting("Schedule.update", wait_for_provisioning, wait_timeout)
        ignore_given(
            "Schedule.update",
            {"continue_on_step_failure": continue_on_step_failure},
            {"continue_on_step_failure": "a schedule runs the pipeline as it is defined"},
        )
        changes = {
            "name": name if name != self.name else None,
            "description": description,
            "recurrence": recurrence,
            "pipeline_parameters": pipeline_parameters,
            "datastore": datastore,
            "polling_interval": polling_interval,
            "data_path_parameter_name": data_path_parameter_name,
            "path_on_datastore": path_on_datastore,
        }
        if any(value is not None for value in changes.values()):
            current = self._workspace._backend.get_schedule(self.name)
            definition = _updated(dict(current.get("definition") or {}), **changes)
            with _errors_at(_caller()):
                data = self._workspace._backend.update_schedule(self.name, definition)
            self._refresh(data)
            self._definition = definition
        if status is not None:
            enabled = status == "Active"
            self._refresh(self._workspace._backend.set_schedule_enabled(self.name, enabled))

    # -- its runs -----------------------------------------------------------------------------

    def get_pipeline_runs(self) -> builtins.list[PipelineRun]:
        """Runs this schedule started, newest first."""
        name = self.pipeline_id.partition("@")[0]
        runs = self._workspace._backend.list_runs(pipeline=name, limit=0)
        return [
            self._workspace._pipeline_run(r["experiment"], r["id"], r)
            for r in runs
            if r["schedule"] == self.name
        ]

    def get_last_pipeline_run(self) -> PipelineRun | None:
        runs = self.get_pipeline_runs()
        return runs[0] if runs else None

    def backfill(
        self,
        start: date | datetime | str,
        end: date | datetime | str,
        max_concurrent: int = 1,
        rerun: bool = False,
    ) -> Backfill:
        """Run each of this schedule's times in ``[start, end]`` once, in the daemon (not an
        Azure name): dates are whole days in the schedule's zone. ``.wait()`` for its end."""
        return start_backfill(
            self._workspace._backend,
            self.name,
            start,
            end,
            max_concurrent=max_concurrent,
            rerun=rerun,
        )

    def __repr__(self) -> str:
        return f"Schedule(Name: {self.name}, Pipeline: {self.pipeline_id}, Status: {self.status})"


def _updated(
    definition: dict[str, Any],
    *,
    name: str | None,
    description: str | None,
    recurrence: ScheduleRecurrence | None,
    pipeline_parameters: dict[str, Any] | None,
    datastore: Any,
    polling_interval: int | None,
    data_path_parameter_name: str | None,
    path_on_datastore: str | None,
) -> dict[str, Any]:
    """The schedules.yaml entry ``definition`` with Schedule.update's changes made."""
    if name is not None:
        definition["name"] = name
    if description is not None:
        definition["description"] = description
    if pipeline_parameters is not None:
        definition["parameters"] = {k: _parameter(v) for k, v in pipeline_parameters.items()}
    watching = (datastore, polling_interval, data_path_parameter_name, path_on_datastore)
    if recurrence is not None:
        if "on_change" in definition:
            raise _invalid(
                "Schedule.update: a file-drop schedule has no recurrence",
                hint="create a time schedule with Schedule.create(..., recurrence=...)",
            )
        for key in ("cron", "interval", "timezone"):
            definition.pop(key, None)  # the recurrence carries its own time zone
        definition["recurrence"] = recurrence._to_definition()
    if any(value is not None for value in watching):
        watch = definition.get("on_change")
        if not isinstance(watch, dict):
            raise _invalid(
                "Schedule.update: datastore settings belong to a file-drop schedule",
                hint="create one with Schedule.create(..., datastore=..., path_on_datastore=...)",
            )
        if datastore is not None:
            watch["datastore"] = getattr(datastore, "name", datastore)
        if path_on_datastore is not None:
            watch["path"] = path_on_datastore
        if data_path_parameter_name is not None:
            watch["data_path_parameter"] = data_path_parameter_name
        if polling_interval is not None:
            watch["polling_interval"] = _on_change(None, None, polling_interval, None)[
                "polling_interval"
            ]
    return definition


def _about_arguments(error: DefinitionError) -> bool:
    """A field of the definition the call built (no file of its own, or the API's ``<api>``
    stand-in), not a mistake in a file on disk."""
    return error.file is None or str(error.file) == "<api>"


def _ignore_waiting(owner: str, wait_for_provisioning: bool, wait_timeout: int) -> None:
    """Azure waits for a schedule to be provisioned; here it is served once the call returns,
    so there is nothing to wait for. Warn only for values other than Azure's defaults."""
    reason = "a schedule is served as soon as the call returns"
    ignore_given(
        owner,
        {
            "wait_for_provisioning": wait_for_provisioning,
            "wait_timeout": wait_timeout if wait_timeout != DEFAULT_WAIT_TIMEOUT else None,
        },
        dict.fromkeys(("wait_for_provisioning", "wait_timeout"), reason),
    )


def _field_message(error: DefinitionError) -> str:
    """An API schedule's field error, naming the field when the message does not."""
    loc = [str(part) for part in getattr(error, "loc", ()) if part not in ("body", "schedules")]
    field = ".".join(loc)
    if field and field not in error.message:
        return f"{field}: {error.message}"
    return error.message


@contextlib.contextmanager
def _errors_at(where: SourcePosition) -> Iterator[None]:
    """Errors about the call's arguments point at the user's line ``where``; an error about a
    file (a pipeline.yaml, schedules.yaml) keeps naming that file."""
    try:
        yield
    except DefinitionErrors as exc:
        if not all(_about_arguments(e) for e in exc.errors):
            raise
        raise DefinitionErrors(
            [DefinitionError(_field_message(e), position=where, hint=e.hint) for e in exc.errors]
        ) from exc
    except (ParameterError, InvalidRequest) as exc:
        raise DefinitionError(exc.message, position=where, hint=exc.hint) from exc


def _parameter(value: Any) -> Any:
    """A schedule parameter's value; a DataPath, dataset or datastore reference as its
    canonical URI."""
    uri = path_default(value)
    if uri is not None:
        return uri
    store = getattr(value, "datastore", None)
    path = getattr(value, "path_on_datastore", None)
    if store is not None and path is not None:
        return f"datastore://{getattr(store, 'name', store)}/{str(path).lstrip('/')}"
    return value


def _on_change(
    datastore: Any, path: str | None, polling_interval: Any, parameter: str | None
) -> dict[str, Any]:
    watch: dict[str, Any] = {"datastore": getattr(datastore, "name", datastore), "path": path or ""}
    if polling_interval is not NOT_GIVEN and polling_interval is not None:
        if isinstance(polling_interval, bool) or not isinstance(polling_interval, int | float):
            raise _invalid(
                f"Schedule.create: polling_interval is in minutes (got {polling_interval!r})"
            )
        minutes = float(polling_interval)
        watch["polling_interval"] = (
            f"{int(minutes)}m" if minutes.is_integer() else f"{minutes * 60:g}s"
        )
    else:
        watch["polling_interval"] = None
    if parameter is not None:
        watch["data_path_parameter"] = parameter
    return watch
