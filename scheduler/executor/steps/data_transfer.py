"""DataTransferStep: copy or sync files between datastores, or into a data output.

The command resolves both ends here, in the daemon, where the config's datastores are known:
a data name becomes its folder, anything else is confined to a datastore the way a ``path``
parameter is (``datastore://NAME/path``, a bare relative path in ``default``, or an absolute
path inside a datastore). The copying happens in ``scheduler.executor.runners.data_transfer``.
"""

from __future__ import annotations

import os
from typing import Any

from scheduler.core.errors import ParameterError
from scheduler.definitions.parameters import SCHEME, resolve_datastore_path
from scheduler.definitions.steps import DataTransferStep, is_data_name
from scheduler.executor.runners import error_command, spec_command
from scheduler.executor.steps.base import StepInvocation


class _Refused(Exception):
    pass


def build_command(inv: StepInvocation[DataTransferStep]) -> list[str]:
    step = inv.step
    try:
        source = _source(inv, step.source)
        destination = _destination(inv, step.destination)
    except _Refused as exc:
        return error_command(inv, str(exc))
    spec = {
        "mode": step.mode,
        "patterns": list(step.patterns),
        "source": source["path"],
        "source_label": source["label"],
        "source_root": source["root"],
        "destination": destination["path"],
        "destination_label": destination["label"],
        "destination_is_dir": destination["is_dir"],
    }
    return spec_command(inv, "data_transfer", spec)


def _source(inv: StepInvocation[DataTransferStep], value: str) -> dict[str, Any]:
    if is_data_name(value):
        path = inv.values["data"].get(value)
        if path is None:  # validation and the DAG make this unreachable; say so if it is not
            raise _Refused(f"source: data '{value}' has no folder (its producer did not run)")
        return {**_confine(inv, path, "source"), "label": f"data '{value}'"}
    return _confine(inv, inv.sub(value), "source")


def _destination(inv: StepInvocation[DataTransferStep], value: str) -> dict[str, Any]:
    if is_data_name(value):
        folder = (inv.outputs or {}).get(value)
        if folder is None:
            raise _Refused(f"destination: data '{value}' has no output folder")
        return {**_confine(inv, folder, "destination"), "label": f"data '{value}'", "is_dir": True}
    text = inv.sub(value)
    found = _confine(inv, text, "destination")
    # A destination is a folder when it is one, or is written as one (trailing slash);
    # otherwise it names the file a single-file source is copied to.
    found["is_dir"] = text.endswith("/") or os.path.isdir(found["path"])
    return found


def _confine(inv: StepInvocation[DataTransferStep], text: str, field: str) -> dict[str, Any]:
    """``{path, root, label}``: the real path, the real root of its datastore, its canonical name."""
    datastores = inv.config.datastores if inv.config is not None else {}
    try:
        canonical, real = resolve_datastore_path(text, datastores, name=field)
    except ParameterError as exc:
        message = exc.message.replace(f"parameter '{field}'", field, 1)
        raise _Refused(f"{message} ({exc.hint})" if exc.hint else message) from None
    store = canonical[len(SCHEME) :].partition("/")[0]
    root = os.path.realpath(datastores[store].path)
    return {"path": str(real), "root": root, "label": canonical}
