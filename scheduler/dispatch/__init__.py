"""The one door into a run: run requests, the concurrency policy, ``max_concurrent_runs`` and the
``queued`` record."""
