"""Where a time fire or a dropped file becomes a run request: the timer, fire records
and catch-up, the file watcher and its ledger."""
