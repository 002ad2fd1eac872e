"""The daemon's HTTP API: the control paths the CLI uses over a unix socket (``control``), how
an app is served inside the daemon's own event loop (``server``), and the CLI's side (``client``).

Import the submodules directly: ``client`` is stdlib only, so ``pipesched cancel`` never pays for
FastAPI's imports.
"""
