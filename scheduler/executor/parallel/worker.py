"""One parallel_run worker process: imports the entry script, calls ``init()`` once, then
``run(mini_batch)`` for each mini-batch the driver sends.

Standard library only, and started by path (``python .../worker.py SPEC NUMBER``), so it runs on
the step's own interpreter — a venv that may not have pipesched installed. The Dask backend imports
the same functions (``load_entry``, ``to_rows``) inside a Dask worker process.

Protocol with the driver: JSON lines. The driver writes ``{"id": N, "files": [...]}`` on the
worker's stdin (plus ``"partition": {...}`` with partition_keys; for a tabular input the files are
pieces, ``{"path", "start", "end"}``, read into one DataFrame here); the worker answers
``{"ready": true, "pid": P}`` once after ``init()`` (or ``{"init_error": TEXT}``), then one
``{"id": N, "ok": true, "count": K, "rows": [...]}`` or ``{"id": N, "ok": false, "error": TEXT}``
per mini-batch, with ``"items"``: the records a tabular mini-batch held. The pipes are moved off fds 0 and 1 first,
so whatever the entry script prints (even from C code) lands in the worker's log, never in the
protocol.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import traceback
from collections.abc import Mapping
from types import ModuleType
from typing import Any, BinaryIO

_TABLES = "pipesched_parallel_tables"  # the sibling tables.py, loaded by path under this name


def load_entry(entry_script: str, arguments: list[str]) -> ModuleType:
    """Import the entry script as a module named after its file (as Azure ML does), with
    ``sys.argv`` set to ``[entry_script, *arguments]`` so its argparse sees the step's arguments.
    Its folder goes first on ``sys.path`` so it can import its neighbours."""
    folder = os.path.dirname(os.path.abspath(entry_script))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.argv = [entry_script, *arguments]
    name = os.path.splitext(os.path.basename(entry_script))[0] or "entry_script"
    spec = importlib.util.spec_from_file_location(name, entry_script)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import entry script {entry_script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise AttributeError(f"entry script {entry_script} has no run(mini_batch) function")
    return module


def tables_module() -> ModuleType:
    """``tables.py`` beside this file. Loaded by path: a worker started by path may run on an
    interpreter that cannot import pipesched."""
    module = sys.modules.get("scheduler.executor.parallel.tables") or sys.modules.get(_TABLES)
    if module is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables.py")
        spec = importlib.util.spec_from_file_location(_TABLES, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_TABLES] = module
        spec.loader.exec_module(module)
    return module


class MiniBatchDataset:
    """``mini_batch_context.dataset``: the mini-batch's part of the input."""

    def __init__(self, items: list[Any], frame: Any = None) -> None:
        self._items, self._frame = items, frame

    def to_path(self) -> list[str]:
        return [item["path"] if isinstance(item, dict) else item for item in self._items]

    def to_pandas_dataframe(self) -> Any:
        if self._frame is None:
            raise TypeError("a mini-batch of files has no DataFrame; read the files in to_path()")
        return self._frame

    def __repr__(self) -> str:
        paths = sorted(set(self.to_path()))
        return f"MiniBatchDataset({paths[:3]}{' ...' if len(paths) > 3 else ''})"


class MiniBatchContext:
    """Azure's optional second argument of ``run(mini_batch, mini_batch_context)``."""

    def __init__(self, partition_key_value: dict[str, Any], dataset: MiniBatchDataset) -> None:
        self.partition_key_value = partition_key_value
        self.dataset = dataset

    def __repr__(self) -> str:
        return f"MiniBatchContext(partition_key_value={self.partition_key_value!r})"


def prepare_batch(
    items: list[Any], partition: Mapping[str, str] | None, spec: Mapping[str, Any]
) -> tuple[Any, MiniBatchContext]:
    """What ``run()`` gets: the file paths, or one DataFrame of the pieces' rows."""
    options, fmt = spec.get("tabular"), spec.get("partition_format")
    frame = tables_module().read_pieces(items, options, fmt) if options is not None else None
    values = tables_module().typed_partition(partition, options, fmt) if partition else {}
    context = MiniBatchContext(values, MiniBatchDataset(items, frame))
    return (frame if frame is not None else list(items)), context


def takes_context(module: ModuleType) -> bool:
    """Does ``run`` take a second positional argument (Azure's mini_batch_context)?"""
    try:
        parameters = inspect.signature(module.run).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional)


def call_run(module: ModuleType, mini_batch: Any, context: MiniBatchContext) -> Any:
    with_context = module.__dict__.get("__pipesched_run_takes_context__")
    if with_context is None:  # asked once per loaded entry script
        with_context = module.__dict__["__pipesched_run_takes_context__"] = takes_context(module)
    return module.run(mini_batch, context) if with_context else module.run(mini_batch)


def call_init(module: ModuleType) -> None:
    init = getattr(module, "init", None)
    if callable(init):
        init()


def to_rows(result: Any) -> list[str]:
    """What ``append_row`` writes for a run() result: one line per element. A pandas DataFrame
    gives one line per row, its values separated by spaces (as Azure ML writes it); a list or
    tuple element gives its items separated by spaces; anything else its ``str()``."""
    if result is None:
        return []
    if hasattr(result, "itertuples"):  # a DataFrame, without importing pandas
        return [" ".join(str(v) for v in row) for row in result.itertuples(index=False)]
    if isinstance(result, str | bytes):
        result = [result]
    rows = []
    for item in result:
        if isinstance(item, list | tuple):
            rows.append(" ".join(str(v) for v in item))
        elif isinstance(item, bytes):
            rows.append(item.decode("utf-8", "replace"))
        else:
            rows.append(str(item))
    return [row.replace("\n", " ") for row in rows]


def result_count(result: Any) -> int:
    """How many items a run() result reports done (Azure: one element per successful item)."""
    if result is None:
        return 0
    if isinstance(result, str | bytes):
        return 1
    try:
        return len(result)
    except TypeError:
        return len(to_rows(result))


def error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _send(out: BinaryIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message).encode("utf-8") + b"\n")
    out.flush()


def _take_protocol_pipes() -> tuple[BinaryIO, BinaryIO]:
    """Keep the protocol on private fds; fd 0 becomes /dev/null and fd 1 the log (fd 2)."""
    proto_in = os.fdopen(os.dup(0), "rb")
    proto_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return proto_in, proto_out


def main(argv: list[str]) -> int:
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # started by path: our folder must not shadow the entry script's imports
    with open(argv[1]) as handle:
        spec = _with_secrets(json.load(handle))
    proto_in, proto_out = _take_protocol_pipes()
    return serve(spec, argv[2], proto_in, proto_out)


def _with_secrets(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with each secret reference its arguments name replaced by the value the step's
    parent passed in $PIPESCHED_SECRETS (the file keeps the references; no pipesched here)."""
    values = json.loads(os.environ.get("PIPESCHED_SECRETS") or "{}")

    def fill(text: str) -> str:
        for reference, value in values.items():
            text = text.replace(reference, value)
        return text

    if values and isinstance(spec.get("arguments"), list):
        spec["arguments"] = [fill(a) if isinstance(a, str) else a for a in spec["arguments"]]
    return spec


def serve(spec: Mapping[str, Any], number: str, proto_in: BinaryIO, proto_out: BinaryIO) -> int:
    """The worker's life once its protocol pipes are private: ``init()``, then one ``run()`` per
    request line until the driver closes ``proto_in``, then ``shutdown()``. Shared by a worker
    started by path and one the driver forks."""
    append = spec["output_action"] == "append_row"
    print(f"[pipesched] worker {number} (pid {os.getpid()}): importing {spec['entry_script']}")
    try:
        if spec.get("tabular") is not None:  # pandas (and pyarrow) first: a clear error if absent
            tables_module().pandas_module(spec["tabular"], " (into the step's environment)")
        module = load_entry(spec["entry_script"], list(spec["arguments"]))
        call_init(module)
    except BaseException as exc:
        traceback.print_exc()
        _send(proto_out, {"init_error": error_text(exc)})
        return 1
    print(f"[pipesched] worker {number}: init() done", flush=True)
    _send(proto_out, {"ready": True, "pid": os.getpid()})
    for line in proto_in:
        request = json.loads(line)
        sys.argv = [spec["entry_script"], *spec["arguments"]]
        reply: dict[str, Any] = {"id": request["id"]}
        try:
            mini_batch, context = prepare_batch(request["files"], request.get("partition"), spec)
            if spec.get("tabular") is not None:
                reply["items"] = len(mini_batch)
            result = call_run(module, mini_batch, context)
            reply.update(ok=True, count=result_count(result))
            if append:
                reply["rows"] = to_rows(result)
        except BaseException as exc:  # SystemExit too: a run() that exits fails its mini-batch
            print(f"[pipesched] mini-batch {request['id']} failed:", flush=True)
            traceback.print_exc()
            sys.stderr.flush()
            reply.update(ok=False, error=error_text(exc))
        sys.stdout.flush()
        _send(proto_out, reply)
    shutdown = getattr(module, "shutdown", None)
    if callable(shutdown):
        shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
