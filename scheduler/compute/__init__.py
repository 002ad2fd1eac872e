"""Where a step's process runs: ``local.py`` (subprocesses on this machine), later ``dask.py``."""
