"""Retention: what a prune deletes (``pipesched prune``, the daemon's daily prune), and the
space it frees.

A run goes when it is older than ``retention.runs``; then, while the state (run folders,
outputs, batch and work folders) is larger than ``retention.max_state_bytes``, the oldest
further runs go. The store decides which runs may go at all (never a live run, the newest
``keep_last`` of a pipeline, a run that registered a model, or one a kept run reused from).

Each page of runs is deleted from the store first, in its own short transaction, and its
folders after: a crash in between leaves folders of runs that no longer exist, which no command
shows, and the next prune sweeps them. Folders are removed without following symlinks (a batch
folder's links point at the user's own files, which stay). A dropped file's ledger row stays,
detached from its deleted run, while the file itself is still there, so it is never run again.

Everything here blocks: the CLI calls it directly, the daemon in a worker thread.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType

from scheduler.core.clock import Clock
from scheduler.core.ids import ALPHABET, ID_LENGTH
from scheduler.core.pathnames import unescape_name
from scheduler.definitions.config import Config
from scheduler.fires.file_scan import snapshot
from scheduler.store import Store
from scheduler.store.retention import PAGE_RUNS, LedgerRow, Protected, PrunableRun, id_bound

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]
KINDS = ("runs", "outputs", "batches", "work")
# Folders of a run in each datastore's ``.pipesched/``, by kind.
DATASTORE_FOLDERS = {"outputs": "outputs", "batches": "batches", "work": "runs"}
# A folder of a run the store does not know is swept only once it is this old: a batch folder
# is made just before its run is recorded.
LEFTOVER_GRACE_SECONDS = 3600.0
# After each delete transaction the prune waits this many times as long as it held the store.
YIELD_FACTOR = 1.0


@dataclass
class PruneReport:
    """What a prune deleted, or would delete (``dry_run``)."""

    dry_run: bool
    runs_by_pipeline: dict[str, int] = field(default_factory=dict)
    bytes_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    step_rows: int = 0
    metric_rows: int = 0
    fire_rows: int = 0  # fire and ledger rows of deleted runs, and old fires that ran nothing
    ledger_rows_kept: int = 0  # ledger rows kept (detached) because their file is still there
    leftover_folders: int = 0  # folders of runs the store no longer holds
    transactions: int = 0
    longest_transaction_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def runs(self) -> int:
        return sum(self.runs_by_pipeline.values())

    @property
    def bytes_freed(self) -> int:
        return sum(self.bytes_by_kind.values())

    def as_json(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "runs": self.runs,
            "runs_by_pipeline": dict(sorted(self.runs_by_pipeline.items())),
            "bytes_freed": self.bytes_freed,
            "bytes_by_kind": dict(self.bytes_by_kind),
            "step_rows": self.step_rows,
            "metric_rows": self.metric_rows,
            "fire_rows": self.fire_rows,
            "ledger_rows_kept": self.ledger_rows_kept,
            "leftover_folders": self.leftover_folders,
            "transactions": self.transactions,
            "longest_transaction_seconds": round(self.longest_transaction_seconds, 6),
            "seconds": round(self.seconds, 3),
        }


def kind_roots(config: Config) -> dict[str, list[Path]]:
    """The folders that hold one sub-folder per run, by kind."""
    roots: dict[str, list[Path]] = {"runs": [config.runs_dir]}
    for kind, name in DATASTORE_FOLDERS.items():
        roots[kind] = [store.path / ".pipesched" / name for store in config.datastores.values()]
    return roots


def folder_bytes(path: Path) -> int:
    """Bytes allocated to ``path`` and everything under it; symlinks count as themselves and
    are never followed."""
    try:
        info = path.lstat()
    except OSError:
        return 0
    total = info.st_blocks * 512
    if not stat.S_ISDIR(info.st_mode):
        return total
    pending = [str(path)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
    return total


def state_bytes(config: Config) -> dict[str, int]:
    """Bytes of the state retention governs, by kind."""
    return {
        kind: sum(folder_bytes(root) for root in roots)
        for kind, roots in kind_roots(config).items()
    }


def remove_folder(path: Path) -> None:
    """Remove ``path`` and what is under it, never following a symlink out of it: a link is
    removed, its target stays. A folder that is itself a symlink is unlinked only."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        path.unlink(missing_ok=True)
        return
    # rmtree's fd-based walk unlinks symlinks inside without following them.
    shutil.rmtree(path, onerror=_ignore_vanished)


def _ignore_vanished(function: Callable[..., object], path: str, exc_info: ExcInfo) -> None:
    """rmtree's error handler: what another prune removed meanwhile is not an error."""
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


def prune(
    config: Config,
    store: Store,
    clock: Clock,
    *,
    dry_run: bool = False,
    page_runs: int = PAGE_RUNS,
) -> PruneReport:
    """Apply ``config.retention`` now (or, with ``dry_run``, say what it would delete)."""
    started = time.monotonic()
    rules = config.retention
    report = PruneReport(dry_run=dry_run)
    now = clock.now()
    cutoff_time = now - timedelta(seconds=rules.runs) if rules.runs is not None else None
    cutoff = id_bound(cutoff_time) if cutoff_time is not None else None
    protected = store.protected_runs(rules.keep_last, cutoff, now)
    pager = _Pager(store, protected, page_runs)
    folders = _RunFolders(config)
    if cutoff is not None:
        for page in pager.pages(after="", before=cutoff):
            _take(config, store, protected, folders, page, report)
    if rules.max_state_bytes is not None:
        # In a dry run nothing went yet: count what the age rule would have freed.
        excess = sum(state_bytes(config).values()) - rules.max_state_bytes
        if dry_run:
            excess -= report.bytes_freed
        for page in pager.pages(after=cutoff or "", before=None):
            if excess <= 0:
                break
            chosen: list[PrunableRun] = []
            for run in page:
                if excess <= 0:
                    break
                chosen.append(run)
                excess -= sum(folders.bytes_of(run.id).values())
            _take(config, store, protected, folders, chosen, report)
    if cutoff_time is not None and not dry_run:
        while True:
            began = time.monotonic()
            gone = store.delete_old_fires(cutoff_time)
            _note(report, time.monotonic() - began)
            report.fire_rows += gone
            if not gone:
                break
    _sweep_leftovers(config, store, report)
    report.seconds = time.monotonic() - started
    return report


class _Pager:
    def __init__(self, store: Store, protected: Protected, page_runs: int) -> None:
        self.store, self.protected, self.limit = store, protected, page_runs

    def pages(self, *, after: str, before: str | None) -> Iterator[list[PrunableRun]]:
        cursor: str | None = after
        while cursor is not None:
            runs, cursor = self.store.prunable_page(
                self.protected, after=cursor, before=before, limit=self.limit
            )
            if runs:
                yield runs


class _RunFolders:
    """The folders of runs, found by name in each kind's folders as they were listed when the
    prune began: one listing per folder instead of a few ``lstat`` calls per run (a prune may
    page through a million runs, most of which left no folder of some kind)."""

    def __init__(self, config: Config) -> None:
        self._listed: list[tuple[str, str, set[str]]] = []
        for kind, roots in kind_roots(config).items():
            for root in roots:
                try:
                    names = set(os.listdir(root))
                except OSError:
                    continue
                self._listed.append((kind, str(root), names))

    def of(self, run_id: str) -> dict[str, list[Path]]:
        found: dict[str, list[Path]] = {}
        for kind, root, names in self._listed:
            if run_id in names:
                found.setdefault(kind, []).append(Path(root, run_id))
        return found

    def bytes_of(self, run_id: str) -> dict[str, int]:
        return {
            kind: sum(folder_bytes(path) for path in paths)
            for kind, paths in self.of(run_id).items()
        }


def _take(
    config: Config,
    store: Store,
    protected: Protected,
    folders: _RunFolders,
    runs: Sequence[PrunableRun],
    report: PruneReport,
) -> None:
    """Delete these runs (one transaction), then their folders; or, in a dry run, count them."""
    if not runs:
        return
    sizes = {run.id: folders.bytes_of(run.id) for run in runs}
    pipelines = {run.id: run.pipeline for run in runs}
    if report.dry_run:
        gone = [run.id for run in runs]
    else:
        keep = _ledger_rows_to_keep(config, store.ledger_rows([run.id for run in runs]))
        began = time.monotonic()
        deleted = store.delete_runs([run.id for run in runs], protected, keep)
        _note(report, _held := time.monotonic() - began)
        # Leave the store free for as long as this page held it: a writer waiting in SQLite's
        # busy handler retries at intervals, and back-to-back pages would starve it.
        time.sleep(_held * YIELD_FACTOR)
        gone = deleted.run_ids
        report.step_rows += deleted.step_rows
        report.metric_rows += deleted.metric_rows
        report.fire_rows += deleted.fire_rows
        report.ledger_rows_kept += deleted.ledger_rows_kept
        for run_id in gone:
            for paths in folders.of(run_id).values():
                for path in paths:
                    remove_folder(path)
    for run_id in gone:
        pipeline = pipelines[run_id]
        report.runs_by_pipeline[pipeline] = report.runs_by_pipeline.get(pipeline, 0) + 1
        for kind, size in sizes[run_id].items():
            report.bytes_by_kind[kind] += size


def _note(report: PruneReport, seconds: float) -> None:
    report.transactions += 1
    report.longest_transaction_seconds = max(report.longest_transaction_seconds, seconds)


def _ledger_rows_to_keep(config: Config, rows: Sequence[LedgerRow]) -> list[int]:
    """The ledger rows whose file is still there, unchanged, in some datastore: kept, so the
    file is never run again."""
    roots = [store.path for store in config.datastores.values()]
    keep: list[int] = []
    for row in rows:
        relative = unescape_name(row.path)
        if any(snapshot(root / relative) == (row.size, row.mtime_ns) for root in roots):
            keep.append(row.fire_id)
    return keep


def _looks_like_run_id(name: str) -> bool:
    return len(name) == ID_LENGTH and all(char in ALPHABET for char in name)


def _sweep_leftovers(config: Config, store: Store, report: PruneReport) -> None:
    """Folders of runs the store no longer holds (a prune that stopped between its rows and
    its folders): removed (counted, in a dry run), once older than the grace."""
    found: dict[str, list[tuple[str, Path]]] = {}
    deadline = time.time() - LEFTOVER_GRACE_SECONDS
    for kind, roots in kind_roots(config).items():
        for root in roots:
            try:
                entries = list(os.scandir(root))
            except OSError:
                continue
            for entry in entries:
                if not _looks_like_run_id(entry.name):
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_mtime > deadline:
                        continue
                except OSError:
                    continue
                found.setdefault(entry.name, []).append((kind, Path(entry.path)))
    if not found:
        return
    known = store.existing_runs(found)
    for run_id, places in found.items():
        if run_id in known:
            continue
        for kind, path in places:
            report.leftover_folders += 1
            report.bytes_by_kind[kind] += folder_bytes(path)
            if not report.dry_run:
                remove_folder(path)


def prune_summary_lines(report: PruneReport) -> list[str]:
    """What ``pipesched prune`` prints: under 80 columns."""
    verb = "would delete" if report.dry_run else "deleted"
    lines = [f"{verb} {_plural(report.runs, 'run')}, freeing {human_bytes(report.bytes_freed)}"]
    for pipeline, count in sorted(report.runs_by_pipeline.items()):
        lines.append(f"  {_shorten(pipeline, 60):<60} {count:>8}")
    kinds = ", ".join(
        f"{kind} {human_bytes(size)}" for kind, size in report.bytes_by_kind.items() if size
    )
    if kinds:
        lines.append(f"  space: {kinds}")
    if report.leftover_folders:
        lines.append(f"  {_plural(report.leftover_folders, 'leftover folder')} of runs gone")
    if not report.dry_run and report.ledger_rows_kept:
        lines.append(
            f"  {_plural(report.ledger_rows_kept, 'handled file')} still in place: "
            "kept in the ledger"
        )
    return lines


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
