"""pipesched's stand-in for the ``azureml`` names that step scripts use, so that a step script
written for Azure ML (``from azureml.core import Run``, ``Model.get_model_path(...)``,
``from azureml_user.parallel_run import EntryScript``) runs unchanged.

Nothing named ``azureml`` is ever installed. The executor copies this folder's ``azureml/`` and
``azureml_user/`` packages and ``bootstrap.py`` into the state directory
(``workdir.azureml_shim``) and puts the bootstrap, as ``sitecustomize``, first on the step's
``PYTHONPATH``. At the step interpreter's start the bootstrap takes its folder off ``sys.path``
again and appends a finder to the *end* of ``sys.meta_path``: Python asks it for ``azureml`` or
``azureml_user`` only after every other finder (the script's folder, ``PYTHONPATH``,
site-packages, editable installs) has found nothing, so a real Azure ML SDK always wins.

The packages use the standard library and ``scheduler.runtime`` only, so they work on a step's
own interpreter without pipesched installed (the executor makes ``scheduler.runtime`` visible
there). They read the step's context from the ``PIPESCHED_*`` variables the executor sets:

- ``PIPESCHED_MODELS_DIR``: version N of model M lives in ``<dir>/M/N/``, holding the registered
  file or folder (``Model.get_model_path``);
- ``PIPESCHED_DATASTORES``: a JSON object, datastore name → folder;
- ``PIPESCHED_OUTPUT_DATASETS``: a JSON object, name → folder of the data the step writes;
- and the runtime's own (``PIPESCHED_RUN_ID``, ``PIPESCHED_INPUT_DATASETS``, ...).
"""

from __future__ import annotations

import functools
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("azureml", "azureml_user")


@functools.cache
def shim_files() -> dict[str, bytes]:
    """The shim's files by their path in the copy: ``boot/sitecustomize.py`` and
    ``packages/<package>/...``. Read once per process: the installed files do not change."""
    files = {"boot/sitecustomize.py": (HERE / "bootstrap.py").read_bytes()}
    for package in PACKAGES:
        for path in sorted((HERE / package).rglob("*.py")):
            files[f"packages/{path.relative_to(HERE).as_posix()}"] = path.read_bytes()
    return files
