"""The sql step (the AdlaStep counterpart): a ``.sql`` script against a SQLAlchemy URL, in one
transaction, run by ``scheduler.executor.runners.sql``.

Bind parameters (``:name``) take the pipeline's parameters in their argv form; ``export`` names
the data output that receives the last result set as ``<data name>.csv`` (named after the data,
so a step that reads several exports tells them apart). A relative SQLite path
(``sqlite:///shop.db``) is relative to the step's working directory, which mirrors the source
directory; ``sqlite:///${{data.X}}/file.db`` or a ``path`` parameter reach a datastore.
"""

from __future__ import annotations

from scheduler.core.secrets import has_secrets, mask_secrets
from scheduler.definitions.steps import SqlStep
from scheduler.executor.runners import spec_command
from scheduler.executor.steps.base import StepInvocation


def build_command(inv: StepInvocation[SqlStep]) -> list[str]:
    step = inv.step
    export = step.export
    url = inv.sub(step.url)
    spec = {
        "url": url,  # secret references stay: the runner gets their values in its environment
        "url_masked": mask_secrets(url) if has_secrets(url) else None,
        "script": str(step.script_path),
        "parameters": dict(inv.values.get("parameters", {})),
        "export_dir": (inv.outputs or {}).get(export) if export else None,
        "export_name": export,
    }
    return spec_command(inv, "sql", spec)
