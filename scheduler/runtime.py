"""The runtime API of step scripts: ``Run.get_context()`` and ``run.log(...)``, after Azure ML SDK v1.

Step scripts import this module, so it stays standard library only and imports nothing of the
package: the executor copies this one file into ``<dir>/scheduler/runtime.py`` (beside an empty
``__init__.py``) for interpreters that do not have pipesched installed.

The contract with the executor is a handful of environment variables:

- ``PIPESCHED_RUN_ID`` (the pipeline run, ``run.parent_id``), ``PIPESCHED_STEP``,
  ``PIPESCHED_ATTEMPT``, ``PIPESCHED_EXPERIMENT``;
- ``PIPESCHED_METRICS_FILE``: a JSON-lines file; every ``log*`` call appends one line
  ``{"name", "kind", "value", "time"}`` with a single ``os.write`` on an ``O_APPEND`` descriptor,
  so a script that crashes right after ``run.log`` loses nothing;
- ``PIPESCHED_IMAGES_DIR``: where ``log_image`` keeps its pictures;
- ``PIPESCHED_INPUT_DATASETS``: a JSON object, input name → absolute path;
- ``PIPESCHED_NOMINAL_TIME``, ``PIPESCHED_INTERVAL_START``, ``PIPESCHED_INTERVAL_END``: the time
  the run stands for and its data interval, ISO 8601 with the schedule zone's offset (the
  interval empty when the run has none): ``run.nominal_time``... as aware datetimes;
- ``PIPESCHED_MODELS_DIR``: the model registry's folder. Version N of model M lives in
  ``<dir>/M/N/``, which holds one entry: the registered file or folder under its own name.
  The latest version is the largest N. ``run.register_model`` copies the model into
  ``<dir>/.staging/`` and claims the next version by renaming that copy to ``<dir>/M/N`` (a
  rename onto a version that exists fails, so two writers never share one), then appends a line
  of kind ``model`` to the metrics file, which the executor records in the store.

Without ``PIPESCHED_RUN_ID`` the run is offline: metrics are printed, nothing is stored.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time
import uuid
import warnings
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

__all__ = ["Model", "Run", "read_metrics_file", "read_model_requests"]

ENV_RUN_ID = "PIPESCHED_RUN_ID"
ENV_STEP = "PIPESCHED_STEP"
ENV_ATTEMPT = "PIPESCHED_ATTEMPT"
ENV_EXPERIMENT = "PIPESCHED_EXPERIMENT"
ENV_METRICS_FILE = "PIPESCHED_METRICS_FILE"
ENV_IMAGES_DIR = "PIPESCHED_IMAGES_DIR"
ENV_INPUT_DATASETS = "PIPESCHED_INPUT_DATASETS"
ENV_MODELS_DIR = "PIPESCHED_MODELS_DIR"
ENV_NOMINAL_TIME = "PIPESCHED_NOMINAL_TIME"
ENV_INTERVAL_START = "PIPESCHED_INTERVAL_START"
ENV_INTERVAL_END = "PIPESCHED_INTERVAL_END"

KINDS = ("scalar", "list", "row", "image")
MODEL_KIND = "model"


class Figure(Protocol):
    """What ``log_image(plot=...)`` needs of a figure: matplotlib's ``savefig``."""

    def savefig(self, fname: str, *, format: str) -> object: ...


class Experiment(str):
    """The experiment's name. A ``str`` so ``run.experiment`` reads as the name, with ``.name``
    so Azure scripts that write ``run.experiment.name`` keep working."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return str(self)

    @property
    def workspace(self) -> StepWorkspace:
        """What Azure scripts pass to ``Model.register`` inside a step."""
        return StepWorkspace()


class StepWorkspace:
    """The workspace as a step sees it (``run.experiment.workspace``): enough to register a
    model with ``Model.register(ws, ...)``; everything else lives with the notebook's workspace."""

    name = "step"

    def __repr__(self) -> str:
        return "StepWorkspace()"


class Run:
    """One step run (or an offline run): what a step script logs its metrics to."""

    def __init__(
        self,
        *,
        run_id: str,
        experiment: str,
        parent_id: str | None,
        step: str | None = None,
        attempt: int | None = None,
        input_datasets: dict[str, str] | None = None,
        metrics_file: str | None = None,
        images_dir: str | None = None,
        models_dir: str | None = None,
        nominal_time: datetime | None = None,
        interval_start: datetime | None = None,
        interval_end: datetime | None = None,
    ) -> None:
        self.id = run_id
        # The time the pipeline run stands for and its data interval (None offline, and the
        # interval None for a run no schedule started).
        self.nominal_time = nominal_time
        self.interval_start = interval_start
        self.interval_end = interval_end
        self.experiment = Experiment(experiment)
        self.parent_id = parent_id
        self.step = step
        self.attempt = attempt
        self.input_datasets: dict[str, str] = dict(input_datasets or {})
        self._metrics_file = metrics_file
        self._images_dir = images_dir
        self._models_dir = models_dir
        self._fd: int | None = None

    @property
    def offline(self) -> bool:
        """True outside a pipeline step: metrics are printed, not stored."""
        return self.parent_id is None

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, experiment={str(self.experiment)!r})"

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def get_context(cls, allow_offline: bool = True, **kwargs: Any) -> Run:
        """This step run inside a pipeline step; an offline run elsewhere (as Azure ML does).

        The run is built once per process and environment, so calling this in a loop does not
        open a file each time."""
        env = os.environ
        key = (cls, *(env.get(name) for name in _CONTEXT_VARIABLES))
        cached = _CONTEXTS.get(key)
        if cached is not None:
            return cached
        run_id = env.get(ENV_RUN_ID)
        if not run_id:
            if not allow_offline:
                raise RuntimeError(
                    f"not inside a pipesched step ({ENV_RUN_ID} is not set) and allow_offline=False"
                )
            run = cls._offline()
        else:
            step = env.get(ENV_STEP) or "step"
            attempt = env.get(ENV_ATTEMPT)
            run = cls(
                run_id=f"{run_id}.{step}",
                experiment=env.get(ENV_EXPERIMENT) or "",
                parent_id=run_id,
                step=step,
                attempt=int(attempt) if attempt and attempt.isdigit() else None,
                input_datasets=_with_named_references(
                    _parse_datasets(env.get(ENV_INPUT_DATASETS)), env
                ),
                metrics_file=env.get(ENV_METRICS_FILE) or None,
                images_dir=env.get(ENV_IMAGES_DIR) or None,
                models_dir=env.get(ENV_MODELS_DIR) or None,
                nominal_time=_parse_time(env.get(ENV_NOMINAL_TIME)),
                interval_start=_parse_time(env.get(ENV_INTERVAL_START)),
                interval_end=_parse_time(env.get(ENV_INTERVAL_END)),
            )
        _CONTEXTS[key] = run
        return run

    @classmethod
    def _offline(cls) -> Run:
        import uuid

        return cls(
            run_id=f"OfflineRun_{uuid.uuid4()}",
            experiment="offline",
            parent_id=None,
        )

    # -- metrics (Azure ML SDK v1 names and arguments) --------------------------------------------

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log a scalar. Logging one name again makes a list of its values, as in Azure ML."""
        self._emit(name, "scalar", _plain(value))

    def log_list(self, name: str, value: Any, description: str = "") -> None:
        """Log a list of values (a list, tuple or numpy array)."""
        self._emit(name, "list", [_plain(v) for v in _as_list(value)])

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """Log one row of a table: ``run.log_row("loss", epoch=1, value=0.3)``."""
        self._emit(name, "row", {key: _plain(v) for key, v in kwargs.items()})

    def log_image(
        self,
        name: str,
        path: str | os.PathLike[str] | None = None,
        plot: Figure | None = None,
        description: str = "",
    ) -> None:
        """Log an image: a file at ``path``, or a matplotlib figure (``plot``) saved as PNG."""
        if (path is None) == (plot is None):
            raise ValueError("log_image needs exactly one of path= or plot=")
        if self.offline:
            _print_metric(name, os.path.abspath(path) if path is not None else "<figure>")
            return
        self._emit(name, "image", self._store_image(name, path, plot))

    def complete(self, _set_status: bool = True) -> None:
        """Does nothing: pipesched ends the step run when the script exits. Kept so Azure
        scripts that call it run unchanged."""

    # -- models -----------------------------------------------------------------------------------

    def register_model(
        self,
        model_name: str,
        model_path: str | os.PathLike[str] | None = None,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        description: str | None = None,
        datasets: Any = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
        **kwargs: Any,
    ) -> Model:
        """Register the file or folder at ``model_path`` (relative to the step's working
        folder, e.g. ``outputs/model.pkl``; default: ``model_name``) as the next version of
        ``model_name``, recorded with this run and step. The copy is made now: the step may
        change or delete its file afterwards."""
        _ignored_model_arguments(
            "register_model",
            model_framework=model_framework,
            model_framework_version=model_framework_version,
            datasets=datasets,
            sample_input_dataset=sample_input_dataset,
            sample_output_dataset=sample_output_dataset,
            resource_configuration=resource_configuration,
            **kwargs,
        )
        if self.offline or self._models_dir is None or self._metrics_file is None:
            raise RuntimeError(
                "register_model records a model from inside a pipeline step; elsewhere use "
                "scheduler.sdk.Model.register(workspace, model_path, model_name)"
            )
        check_model_name(model_name)
        tags, properties = _model_mapping("tags", tags), _model_mapping("properties", properties)
        source = os.path.abspath(os.fspath(model_path if model_path is not None else model_name))
        if not os.path.exists(source):
            raise FileNotFoundError(f"model path {source!r} cannot be found")
        staged = stage_model(self._models_dir, source)
        version, path = claim_version(self._models_dir, model_name, staged)
        request = {"version": version, "tags": tags, "properties": properties}
        request["description"] = description
        self._write_line({"name": model_name, "kind": MODEL_KIND, "value": request})
        return Model(
            model_name,
            version,
            path,
            tags=tags,
            properties=properties,
            description=description,
            run_id=self.parent_id,
        )

    # -- internals --------------------------------------------------------------------------------

    def _emit(self, name: str, kind: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a metric name must be a non-empty string, not {name!r}")
        if self.offline or self._metrics_file is None:
            _print_metric(name, value)
            return
        self._write_line({"name": name, "kind": kind, "value": value})

    def _write_line(self, record: dict[str, Any]) -> None:
        assert self._metrics_file is not None
        line = json.dumps({**record, "time": time.time()}, default=_json_default)
        data = (line + "\n").encode("utf-8")
        if self._fd is None:
            self._fd = os.open(self._metrics_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        # One write per line, straight to the kernel: no buffer to lose if the script crashes.
        written = os.write(self._fd, data)
        while written < len(data):  # only on a full disk or a signal; finish the line anyway
            written += os.write(self._fd, data[written:])

    def _store_image(
        self, name: str, path: str | os.PathLike[str] | None, plot: Figure | None
    ) -> str:
        folder = self._images_dir or os.path.join(os.getcwd(), "outputs")
        os.makedirs(folder, exist_ok=True)
        if plot is not None:
            target = _claim_name(folder, _safe_name(name), ".png")
            plot.savefig(target, format="png")
        else:
            assert path is not None  # log_image takes exactly one of the two
            source = os.fspath(path)
            target = _claim_name(folder, _safe_name(name), os.path.splitext(source)[1] or ".png")
            import shutil  # here, not at the top: importing this module stays cheap

            shutil.copyfile(source, target)
        return os.path.abspath(target)


_CONTEXT_VARIABLES = (
    ENV_RUN_ID,
    ENV_STEP,
    ENV_ATTEMPT,
    ENV_EXPERIMENT,
    ENV_METRICS_FILE,
    ENV_IMAGES_DIR,
    ENV_INPUT_DATASETS,
    ENV_MODELS_DIR,
    ENV_NOMINAL_TIME,
    ENV_INTERVAL_START,
    ENV_INTERVAL_END,
)
_CONTEXTS: dict[tuple[object, ...], Run] = {}  # by class too: a subclass gets its own


def _parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time from the environment; None when unset, empty or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _parse_datasets(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{ENV_INPUT_DATASETS} must hold a JSON object, not {text!r}")
    return {str(key): str(value) for key, value in data.items()}


def _with_named_references(datasets: dict[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """The inputs plus each ``AZUREML_DATAREFERENCE_<NAME>`` variable of the step not already
    among them: Azure ML names an input by its consumption name (``as_named_input``, or a
    ``DatasetConsumptionConfig`` around a pipeline parameter), which the SDK passes that way."""
    named = dict(datasets)
    for key, value in env.items():
        if key.startswith(_DATA_REFERENCE) and len(key) > len(_DATA_REFERENCE) and value:
            named.setdefault(key[len(_DATA_REFERENCE) :], value)
    return named


_DATA_REFERENCE = "AZUREML_DATAREFERENCE_"


def _json_default(value: Any) -> Any:
    """numpy (and other array libraries') values become plain Python values."""
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    raise TypeError(f"cannot log a value of type {type(value).__name__}: {value!r}")


def _plain(value: Any) -> Any:
    """A JSON-able value now, so a bad value fails at the ``log`` call, not later."""
    if value is None or type(value) in (str, bool, int, float):  # exact: np.float64 is a float
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str | os.PathLike):
        return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    if callable(getattr(value, "tolist", None)) or callable(getattr(value, "item", None)):
        return _plain(_json_default(value))
    for plain_type in (bool, int, float):  # subclasses such as IntEnum
        if isinstance(value, plain_type):
            return plain_type(value)
    return _json_default(value)  # raises the TypeError that names the type


def _as_list(value: Any) -> list[Any]:
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise TypeError(f"log_list needs a list of values, not {type(value).__name__}")
    return list(value)


def _print_metric(name: str, value: Any) -> None:
    print(f"{name}: {value}", flush=True)


def _safe_name(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return safe or "image"


def _claim_name(folder: str, stem: str, suffix: str) -> str:
    """A new file name in ``folder``; O_EXCL so parallel workers never overwrite each other."""
    for n in range(10_000):
        candidate = os.path.join(folder, f"{stem}{suffix}" if n == 0 else f"{stem}-{n}{suffix}")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue
        return candidate
    import uuid

    return os.path.join(folder, f"{stem}-{uuid.uuid4().hex}{suffix}")


def read_metrics_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The metric lines of a metrics file, in the order they were logged.

    Tolerant, because the writer may have died mid-line: a torn or unreadable line is skipped,
    a missing file is no metrics."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    metrics: list[dict[str, Any]] = []
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if (
            isinstance(record, dict)
            and isinstance(record.get("name"), str)
            and (record.get("kind") in KINDS and "value" in record)
        ):
            metrics.append(record)
    return metrics


def read_model_requests(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The ``run.register_model`` lines of a metrics file, in order: ``{"name", "version",
    "tags", "properties", "description"}``. Torn or malformed lines are skipped, as for metrics."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    requests: list[dict[str, Any]] = []
    for raw in data.split(b"\n"):
        try:
            record = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError):
            continue
        if not isinstance(record, dict) or record.get("kind") != MODEL_KIND:
            continue
        value = record.get("value")
        if (
            isinstance(value, dict)
            and isinstance(record.get("name"), str)
            and type(value.get("version")) is int
        ):
            requests.append(
                {
                    "name": record["name"],
                    "version": value["version"],
                    "tags": value.get("tags") if isinstance(value.get("tags"), dict) else {},
                    "properties": value.get("properties")
                    if isinstance(value.get("properties"), dict)
                    else {},
                    "description": value.get("description")
                    if isinstance(value.get("description"), str)
                    else None,
                }
            )
    return requests


# -- the model registry's folder ------------------------------------------------------------------
#
# <models dir>/<name>/<version>/<entry>: the entry is the registered file or folder, under the
# name it had. Only folders named by a version number count; ".staging" holds copies being made.

STAGING_DIR = ".staging"
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_PRIVATE_DIR, _PRIVATE_FILE = 0o700, 0o600
_CLAIM_TRIES = 10_000


class ModelNotFound(LookupError):
    """No registered model of that name (or version) in the registry's folder."""


def check_model_name(name: object) -> str:
    """``name`` when it can name a model: 1 to 255 letters, digits, ``-``, ``_`` or ``.``,
    starting with a letter or digit (as Azure ML asks); ValueError otherwise."""
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid model name {name!r}: use 1 to 255 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return name


def model_versions(models_dir: str | os.PathLike[str], name: str) -> list[int]:
    """The versions of ``name`` in the registry's folder, oldest first."""
    folder = os.path.join(models_dir, check_model_name(name))
    try:
        entries = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(e) for e in entries if e.isdigit() and e == str(int(e)) and int(e) > 0)


def model_file(models_dir: str | os.PathLike[str], name: str, version: int | None = None) -> str:
    """The registered file or folder of ``name`` at ``version`` (default: the latest)."""
    versions = model_versions(models_dir, name)
    if version is None:
        if not versions:
            raise ModelNotFound(f"no model named {name!r} is registered")
        version = versions[-1]
    elif version not in versions:
        known = ", ".join(map(str, versions)) or "none"
        raise ModelNotFound(f"model {name!r} has no version {version} (versions: {known})")
    folder = os.path.join(models_dir, name, str(version))
    entries = os.listdir(folder)
    if len(entries) != 1:
        raise ModelNotFound(f"{folder} should hold one file or folder, not {sorted(entries)}")
    return os.path.join(folder, entries[0])


def stage_model(models_dir: str | os.PathLike[str], source: str | os.PathLike[str]) -> str:
    """A private copy of ``source`` (a file or a folder, links followed) in a new folder under
    ``<models dir>/.staging/``; the new folder's path. Nothing is left behind on failure."""
    source = os.path.abspath(os.fspath(source))
    entry = os.path.basename(source.rstrip(os.sep))
    if not entry or not os.path.exists(source):
        raise FileNotFoundError(f"model path {source!r} cannot be found")
    staging = os.path.join(models_dir, STAGING_DIR)
    _private_dirs(staging)
    staged = os.path.join(staging, uuid.uuid4().hex)
    os.mkdir(staged, _PRIVATE_DIR)
    try:
        os.chmod(staged, _PRIVATE_DIR)
        _copy_private(source, os.path.join(staged, entry), set())
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged


def claim_version(
    models_dir: str | os.PathLike[str], name: str, staged: str, first: int = 1
) -> tuple[int, str]:
    """Move the ``staged`` copy to the first free version of ``name`` from ``first`` on (or
    after the latest in the folder); (that version, the registered file's path). The rename
    is the claim: it fails when the version's folder exists, and the next one is tried."""
    folder = os.path.join(models_dir, check_model_name(name))
    _private_dirs(folder)
    versions = model_versions(models_dir, name)
    version = max(first, versions[-1] + 1 if versions else 1)
    (entry,) = os.listdir(staged)
    for _ in range(_CLAIM_TRIES):
        target = os.path.join(folder, str(version))
        try:
            os.rename(staged, target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                raise
            version += 1
            continue
        return version, os.path.join(target, entry)
    raise RuntimeError(f"no free version of model {name!r} after {_CLAIM_TRIES} tries")


def _private_dirs(path: str) -> None:
    """``path`` and its missing parents, each new one 0700 whatever the umask."""
    if not path or os.path.isdir(path):
        return
    _private_dirs(os.path.dirname(path))
    try:
        os.mkdir(path, _PRIVATE_DIR)
    except FileExistsError:
        return
    os.chmod(path, _PRIVATE_DIR)


def _copy_private(source: str, target: str, walking: set[str]) -> None:
    """Copy a file (0600) or a folder (0700, recursively); a link to a folder that is being
    copied already (a loop) is refused."""
    if os.path.isdir(source):
        real = os.path.realpath(source)
        if real in walking:
            raise ValueError(f"{source} links back into the model folder it is part of")
        os.mkdir(target, _PRIVATE_DIR)
        os.chmod(target, _PRIVATE_DIR)
        with os.scandir(source) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            _copy_private(os.path.join(source, name), os.path.join(target, name), walking | {real})
        return
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _PRIVATE_FILE)
    with open(fd, "wb") as out, open(source, "rb") as src:
        os.fchmod(out.fileno(), _PRIVATE_FILE)
        shutil.copyfileobj(src, out, 1024 * 1024)


def _model_mapping(what: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict, not {type(value).__name__}")
    return {str(key): _plain(v) for key, v in value.items()}


def _ignored_model_arguments(where: str, **given: Any) -> None:
    for name, value in given.items():
        if value is not None:
            warnings.warn(
                f"{where}: {name} is accepted and ignored (pipesched keeps the files, tags, "
                "properties and description of a model)",
                stacklevel=3,
            )


class Model:
    """A registered model as a step sees it (Azure ML's ``Model``): ``name``, ``version``,
    ``id`` (``name:version``), ``tags``, ``properties``, ``description``, ``run_id`` and the
    registered file's ``path``. In a step, ``Model.get_model_path(name)`` finds a model's file
    and ``Model.register(ws, path, name)`` registers one, recorded with the step."""

    def __init__(
        self,
        name: str,
        version: int,
        path: str,
        *,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        description: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.name, self.version, self.path = name, version, path
        self.tags = dict(tags or {})
        self.properties = dict(properties or {})
        self.description = description
        self.run_id = run_id

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    def __repr__(self) -> str:
        return (
            f"Model(name={self.name!r}, id={self.id!r}, version={self.version}, tags={self.tags})"
        )

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: Any = None) -> str:
        """The path of a registered model's file or folder (the latest version by default):
        inside a step, from the registry's folder; elsewhere from Azure's local cache,
        ``./azureml-models/<name>/<version>/``, then ``./<name>``."""
        if version is not None and (type(version) is not int or version < 1):
            raise ValueError(f"version must be a positive int, not {version!r}")
        models_dir = os.environ.get(ENV_MODELS_DIR)
        if models_dir:
            return model_file(models_dir, model_name, version)
        try:
            return model_file("azureml-models", model_name, version)
        except ModelNotFound:
            if version is None and os.path.exists(model_name):
                return model_name
            raise ModelNotFound(
                f"model {model_name!r} not found: outside a pipeline step, pass "
                "_workspace=ws to scheduler.sdk.Model.get_model_path"
            ) from None

    @staticmethod
    def register(
        workspace: Any,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Model:
        """Inside a step: ``Run.get_context().register_model(...)`` (the workspace is the
        step's own)."""
        return Run.get_context().register_model(
            model_name,
            model_path,
            tags=tags,
            properties=properties,
            description=description,
            **kwargs,
        )
