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
- ``PIPESCHED_INPUT_DATASETS``: a JSON object, input name → absolute path.

Without ``PIPESCHED_RUN_ID`` the run is offline: metrics are printed, nothing is stored.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Protocol

__all__ = ["Run", "read_metrics_file"]

ENV_RUN_ID = "PIPESCHED_RUN_ID"
ENV_STEP = "PIPESCHED_STEP"
ENV_ATTEMPT = "PIPESCHED_ATTEMPT"
ENV_EXPERIMENT = "PIPESCHED_EXPERIMENT"
ENV_METRICS_FILE = "PIPESCHED_METRICS_FILE"
ENV_IMAGES_DIR = "PIPESCHED_IMAGES_DIR"
ENV_INPUT_DATASETS = "PIPESCHED_INPUT_DATASETS"

KINDS = ("scalar", "list", "row", "image")


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
    ) -> None:
        self.id = run_id
        self.experiment = Experiment(experiment)
        self.parent_id = parent_id
        self.step = step
        self.attempt = attempt
        self.input_datasets: dict[str, str] = dict(input_datasets or {})
        self._metrics_file = metrics_file
        self._images_dir = images_dir
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
                input_datasets=_parse_datasets(env.get(ENV_INPUT_DATASETS)),
                metrics_file=env.get(ENV_METRICS_FILE) or None,
                images_dir=env.get(ENV_IMAGES_DIR) or None,
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

    # -- internals --------------------------------------------------------------------------------

    def _emit(self, name: str, kind: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a metric name must be a non-empty string, not {name!r}")
        if self.offline or self._metrics_file is None:
            _print_metric(name, value)
            return
        line = json.dumps(
            {"name": name, "kind": kind, "value": value, "time": time.time()},
            default=_json_default,
        )
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
)
_CONTEXTS: dict[tuple[object, ...], Run] = {}  # by class too: a subclass gets its own


def _parse_datasets(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{ENV_INPUT_DATASETS} must hold a JSON object, not {text!r}")
    return {str(key): str(value) for key, value in data.items()}


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
