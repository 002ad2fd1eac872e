"""The SDK on this machine, without a daemon in between: the store is read directly, a submitted
run executes in a child process (``scheduler.sdk.child``), and every operation is the services'
(as for the CLI and the daemon). Cancel and schedule changes go through the services' client:
to the daemon of the same config when it answers on its socket, so it acts on them at once."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scheduler.core import errors
from scheduler.definitions.config import Config, load_config
from scheduler.sdk._warn import SdkError
from scheduler.services import datastores as datastore_service
from scheduler.services import drafts as draft_service
from scheduler.services import publish as publish_service
from scheduler.services import runs as run_service
from scheduler.services import schedules as schedule_service
from scheduler.services.client import ServiceClient
from scheduler.services.datastores import DatastoreEntry
from scheduler.services.logs import read_step_log
from scheduler.services.outputs import step_outputs
from scheduler.services.publish import PublishedVersion
from scheduler.services.snapshots import store_snapshot
from scheduler.store import Store

# How long a child may take to record its run (imports, definition load, parameter checks).
CHILD_START_TIMEOUT = 60.0


class EmbeddedBackend:
    """``Backend`` over a config file on this machine."""

    def __init__(self, config_path: Path, config: Config | None = None) -> None:
        self.config_path = Path(config_path)
        self.config = config or load_config(self.config_path)
        self._store: Store | None = None
        self._lock = threading.Lock()
        # Run id -> set when the child that runs it exits: waiting on a run started here needs
        # no polling at its end.
        self._exited: dict[str, threading.Event] = {}

    @property
    def store(self) -> Store:
        """Opened on first use and kept: opening migrates, which need not happen per call."""
        with self._lock:
            if self._store is None:
                self._store = Store.open(self.config.database_url)
            return self._store

    @property
    def client(self) -> ServiceClient:
        """Changes through the daemon of this config when it answers, else on the store."""
        return ServiceClient(self.config, lambda: contextlib.nullcontext(self.store))

    # -- workspace ----------------------------------------------------------------------------

    def describe(self) -> str:
        return f"config={str(self.config_path)!r}"

    def datastore_names(self) -> list[str]:
        return list(self.config.datastores)

    def compute_targets(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "type": target.type, "max_workers": target.max_workers}
            for name, target in self.config.compute.items()
        ]

    def datastore_path(self, name: str) -> Path | None:
        store = self.config.datastores.get(name)
        if store is None:
            raise errors.NotFound(
                f"no datastore {name!r}", hint=f"datastores: {', '.join(self.config.datastores)}"
            )
        return store.path

    def endpoint_url(self, pipeline: str, version: str | None) -> str:
        return publish_service.endpoint_url(self.config, pipeline, version)

    # -- datastore files: copies within this machine, confined to the datastore ----------------

    def put_datastore_file(
        self, datastore: str, path: str, source: Path, *, overwrite: bool
    ) -> bool:
        return datastore_service.copy_into(
            self.config, datastore, path, Path(source), overwrite=overwrite
        )

    def list_datastore_folder(self, datastore: str, path: str) -> list[DatastoreEntry]:
        return datastore_service.list_folder(self.config, datastore, path)

    def get_datastore_file(self, datastore: str, path: str, target: Path) -> None:
        with datastore_service.open_file(self.config, datastore, path) as handle:
            chunks = iter(lambda: handle.read(datastore_service.CHUNK), b"")
            datastore_service.write_local(Path(target), chunks)

    # -- runs ---------------------------------------------------------------------------------

    def submit(
        self,
        folder: Path,
        *,
        experiment: str,
        parameters: dict[str, Any],
        regenerate_outputs: bool = False,
        continue_on_step_failure: bool | None = None,
    ) -> str:
        snapshot, _ = store_snapshot(self.config, Path(folder))
        return self._start_child(
            {
                "snapshot": snapshot,
                "experiment": experiment,
                "parameters": parameters,
                "regenerate_outputs": regenerate_outputs,
                "continue_on_step_failure": continue_on_step_failure,
            }
        )

    def submit_published(
        self,
        name: str,
        version: str | None,
        *,
        experiment: str | None,
        parameters: dict[str, Any],
        continue_on_step_failure: bool | None = None,
        regenerate_outputs: bool = False,
    ) -> str:
        return self._start_child(
            {
                "pipeline": name,
                "version": version,
                "experiment": experiment,
                "parameters": parameters,
                "regenerate_outputs": regenerate_outputs,
                "continue_on_step_failure": continue_on_step_failure,
            }
        )

    def _start_child(self, request: dict[str, Any]) -> str:
        """Start the run's own process and return its run id once it is recorded.

        A new session: the run outlives a notebook kernel's restart or Ctrl-C, as an Azure run
        outlives its notebook. The request is one JSON argument, so no argv word of the child
        can pass for a ``pipesched daemon``/``run`` subcommand (scheduler.services.cancel reads argv)."""
        request = {**request, "config": str(self.config_path)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "scheduler.sdk.child", json.dumps(request)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd=str(self.config_path.parent),
        )
        exited = threading.Event()

        def reap() -> None:  # no zombies: something must wait() for the child
            proc.wait()
            exited.set()

        threading.Thread(target=reap, name=f"sdk-child-{proc.pid}", daemon=True).start()
        line, problem = _first_line(proc, CHILD_START_TIMEOUT)
        run_id = _answer(line, problem)
        self._exited[run_id] = exited
        return run_id

    def wait_for_change(self, run_id: str, timeout: float) -> None:
        """Up to ``timeout``; at once when the child running ``run_id`` exits (a run started
        elsewhere raises no event here: another process's SQLite writes are silent)."""
        exited = self._exited.get(run_id)
        if exited is None:
            time.sleep(timeout)
        else:
            exited.wait(timeout)

    def get_run(self, run_id: str) -> dict[str, Any]:
        return run_service.get_run(self.store, run_id).to_json()

    def list_runs(
        self, *, experiment: str | None = None, pipeline: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        records = run_service.list_runs(
            self.store, pipeline=pipeline, experiment=experiment, limit=limit
        )
        metrics = run_service.runs_metrics(self.store, records)
        return [r.to_json() | metrics[r.id] for r in records]

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        return self.client.cancel(run_id).run

    def step_log(self, run_id: str, step: str, *, follow: bool = False) -> Iterator[bytes]:
        """The step's latest attempt's log, found as ``pipesched logs`` finds it; with
        ``follow``, until the step ends."""
        return read_step_log(self.store, run_id, step, follow=follow)

    # -- published pipelines ------------------------------------------------------------------

    def publish(
        self, folder: Path, *, name: str, version: str | None, description: str | None
    ) -> dict[str, Any]:
        _, pipeline = store_snapshot(self.config, Path(folder))
        published = publish_service.publish_definition(
            self.config, self.store, pipeline, name=name, version=version, description=description
        )
        return self._published_json(published)

    def publish_run(
        self, run_id: str, *, name: str, version: str | None, description: str | None
    ) -> dict[str, Any]:
        store = self.store
        published = publish_service.publish_run(
            self.config,
            store,
            run_service.resolve_run(store, run_id),
            name=name,
            version=version,
            description=description,
        )
        return self._published_json(published)

    def list_published(self, name: str | None = None) -> list[dict[str, Any]]:
        return [self._published_json(v) for v in publish_service.list_versions(self.store, name)]

    def set_default_version(self, name: str, version: str) -> None:
        publish_service.set_default_version(self.store, name, version)

    def endpoint_submit_url(self, endpoint_id: str) -> str:
        return publish_service.endpoint_submit_url(self.config, endpoint_id)

    def list_endpoints(self) -> list[dict[str, Any]]:
        return [publish_service.endpoint_json(self.config, e) for e in self.store.list_endpoints()]

    def add_endpoint_version(
        self, name: str, pipeline: str, version: str, *, create: bool, description: str | None
    ) -> dict[str, Any]:
        endpoint = publish_service.add_to_endpoint(
            self.store, name, pipeline, version, create=create, description=description
        )
        return publish_service.endpoint_json(self.config, endpoint)

    def set_endpoint_default(self, name: str, pipeline: str, version: str) -> dict[str, Any]:
        endpoint = publish_service.set_endpoint_default(self.store, name, pipeline, version)
        return publish_service.endpoint_json(self.config, endpoint)

    def rename_endpoint(self, name: str, new_name: str) -> dict[str, Any]:
        endpoint = publish_service.rename_endpoint(self.store, name, new_name)
        return publish_service.endpoint_json(self.config, endpoint)

    def _published_json(self, published: PublishedVersion) -> dict[str, Any]:
        data = published.to_json()
        data["endpoint"] = self.endpoint_url(published.pipeline, published.version)
        return data

    # -- schedules ----------------------------------------------------------------------------

    def create_schedule(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Everything that can fail is checked before the schedule is kept."""
        return self.client.create_schedule(definition)

    def list_schedules(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in schedule_service.list_schedules(self.config, self.store)]

    def get_schedule(self, name: str) -> dict[str, Any]:
        for schedule in self.list_schedules():
            if schedule["name"] == name:
                return schedule
        raise errors.NotFound(f"no schedule {name!r}")

    def set_schedule_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        self.client.set_schedule_enabled(name, enabled)
        return self.get_schedule(name)

    def update_schedule(self, name: str, definition: dict[str, Any]) -> dict[str, Any]:
        return self.client.update_schedule(name, definition)

    def delete_schedule(self, name: str) -> None:
        self.client.delete_schedule(name)

    # -- step outputs, pipeline drafts, modules -----------------------------------------------

    def step_outputs(self, run_id: str, step: str) -> list[dict[str, Any]]:
        return [o.to_json() for o in step_outputs(self.config, self.store, run_id, step)]

    def create_draft(
        self,
        source: dict[str, Any],
        fields: dict[str, Any],
        properties: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if "folder" in source:
            snapshot, _ = store_snapshot(self.config, Path(source["folder"]))
            source = {"snapshot": snapshot}
        draft = draft_service.new_draft(self.config, self.store, source, fields, properties)
        return draft.to_json()

    def list_drafts(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in draft_service.list_drafts(self.config)]

    def get_draft(self, draft_id: str) -> dict[str, Any]:
        return draft_service.get_draft(self.config, draft_id).to_json()

    def update_draft(
        self, draft_id: str, fields: dict[str, Any], folder: Path | None = None
    ) -> dict[str, Any]:
        if folder is not None:
            fields = {**fields, "snapshot": store_snapshot(self.config, Path(folder))[0]}
        return draft_service.update_draft(self.config, draft_id, fields).to_json()

    def delete_draft(self, draft_id: str) -> None:
        draft_service.delete_draft(self.config, draft_id)

    def submit_draft(self, draft_id: str) -> str:
        draft = draft_service.get_draft(self.config, draft_id)
        run_id = self._start_child(
            {
                "snapshot": draft.snapshot,
                "experiment": draft.experiment_name,
                "parameters": draft.pipeline_parameters,
                "regenerate_outputs": False,
                "continue_on_step_failure": draft.continue_on_step_failure,
            }
        )
        draft_service.record_submitted(self.config, draft.id, run_id)
        return run_id

    def publish_draft(self, draft_id: str) -> dict[str, Any]:
        return self._published_json(draft_service.publish_draft(self.config, self.store, draft_id))

    def modules_dir(self) -> Path:
        """Beside the runs and published pipelines of this config."""
        return self.config.state_dir / "modules"


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, str]:
    """The child's first stdout line, and its stderr when there is none. Both pipes are read
    together, so a child that warns a lot before its first line never blocks on a full pipe.
    The child puts its log file in place of both once it prints the run id, so both end then."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    open_fds = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    deadline = time.monotonic() + timeout
    try:
        while open_fds and b"\n" not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SdkError(f"the run's process did not record a run within {timeout:g}s")
            ready, _, _ = select.select(list(open_fds), [], [], left)
            for fd in ready:
                chunk = os.read(fd, 65536)
                if chunk:
                    open_fds[fd].extend(chunk)
                else:
                    del open_fds[fd]
    finally:
        proc.stdout.close()
        proc.stderr.close()
    line = bytes(out).split(b"\n", 1)[0]
    return line, bytes(err).decode(errors="replace")


def _answer(line: bytes, problem: str) -> str:
    """The child's first stdout line: the run id, or its error raised here as the same class
    with the same words (a ParameterError reaches the user unchanged)."""
    if not line:
        tail = "\n".join(problem.strip().splitlines()[-20:])
        raise SdkError(f"the run's process exited before recording a run:\n{tail}".rstrip())
    answer = json.loads(line)
    if "run_id" in answer:
        return answer["run_id"]
    raise rebuild_error(answer["error"])


def rebuild_error(error: dict[str, Any]) -> errors.PipeschedError:
    """A user error the child reported, as the class it was (a pipesched error class by name;
    DefinitionErrors keep their one-line-per-problem text)."""
    kind = getattr(errors, error.get("type", ""), None)
    message, hint = error.get("message"), error.get("hint")
    if kind is errors.DefinitionErrors or kind is errors.DefinitionError:
        return SdkError(error.get("text") or message)
    if isinstance(kind, type) and issubclass(kind, errors.ParameterError):
        return kind(message, name=error.get("name") or "", hint=hint)
    if isinstance(kind, type) and issubclass(kind, errors.PipeschedError):
        return kind(message, hint=hint)
    return errors.PipeschedError(message, hint=hint)
