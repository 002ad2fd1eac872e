"""A real daemon whose state directory's filesystem fills while a 1 s interval fires, files drop
and a step ends, then gets its space back: no fire time, dropped file or step outcome is lost,
no run is left open, the database passes ``integrity_check`` and the WAL is truncated again.

The filesystem is a real one of a known size: a tmpfs of 96 MiB mounted for the test (root
only; elsewhere the test is skipped with the reason).
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.daemon.ballast import BALLAST_BYTES
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import make_project

pytestmark = pytest.mark.slow

FILESYSTEM_BYTES = 96 * 1024 * 1024


@pytest.fixture
def small_filesystem(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FILESYSTEM_BYTES},mode=0700", "tmpfs", mount_point],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", mount_point], check=False)


def fill(folder: Path, name: str) -> int:
    """Write ``folder/name`` until the filesystem says ENOSPC; the bytes written."""
    written = 0
    chunk = b"\0" * (1024 * 1024)
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                written += os.write(fd, chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)


def test_a_full_state_filesystem_loses_nothing_and_recovers_once_space_comes_back(
    tmp_path, small_filesystem
):
    drops = tmp_path / "drops"
    (drops / "inbox").mkdir(parents=True)
    state_dir = small_filesystem / "var"
    project = make_project(
        tmp_path,
        state_dir=str(state_dir),
        datastores={"default": {"path": str(drops)}},
        min_free_space="4MiB",
    )
    handled = tmp_path / "handled.txt"
    project.pipeline(
        "tick", "steps:\n  s: {type: python_script, script: s.py}\n", {"s.py": "pass\n"}
    )
    project.pipeline(
        "score",
        "parameters: {input_path: {type: str, default: ''}}\n"
        "steps:\n  s:\n    type: python_script\n    script: s.py\n"
        "    arguments: ['${{parameters.input_path}}']\n",
        {
            "s.py": (
                "import sys\n"
                f"with open({str(handled)!r}, 'a') as out:\n"
                "    out.write(sys.argv[1] + '\\n')\n"
            )
        },
    )
    go = tmp_path / "go"
    project.pipeline(
        "waiter",
        "steps:\n  w: {type: python_script, script: w.py}\n",
        {
            "w.py": (
                f"import os, time\nwhile not os.path.exists({str(go)!r}):\n    time.sleep(0.05)\n"
            )
        },
    )
    project.schedules(
        "schedules:\n"
        "  - {name: tick, pipeline: tick, interval: 1s}\n"
        "  - {name: waiter, pipeline: waiter, interval: 100d}\n"
        "  - name: drop\n"
        "    pipeline: score\n"
        "    concurrency: allow\n"
        "    on_change: {datastore: default, path: inbox/, patterns: ['*.csv'],\n"
        "                data_path_parameter: input_path}\n"
    )
    daemon = DaemonProcess(project)
    store = None
    try:
        daemon.start()
        assert (state_dir / "ballast").stat().st_size == BALLAST_BYTES
        assert project.cli("schedule", "trigger", "waiter").returncode == 0
        store = project.store()
        waiting = wait_until(
            lambda: next((r for r in store.list_runs(limit=50) if r.pipeline == "waiter"), None),
            timeout=20,
        )
        wait_until(lambda: store.get_run(waiting.id).status.value == "running", timeout=20)

        # The disk fills; the daemon gives its ballast back; the disk fills again.
        fill(small_filesystem, "filler-1")
        wait_until(lambda: daemon.events("ballast_released"), timeout=20)
        fill(small_filesystem, "filler-2")
        dropped = []
        for number in range(12):
            part = drops / "inbox" / f"file-{number}.csv.part"
            part.write_text(f"{number}\n")
            os.replace(part, drops / "inbox" / f"file-{number}.csv")
            dropped.append(f"inbox/file-{number}.csv")
        go.touch()  # the step exits 0 while the disk is full
        wait_until(lambda: daemon_request(project, "GET", "/healthz")[0] == 503, timeout=20)
        full_for = daemon.events("store_unwritable")
        assert full_for and "full" in full_for[-1]["reason"]

        # Space comes back.
        (small_filesystem / "filler-1").unlink()
        (small_filesystem / "filler-2").unlink()

        def ended() -> str | None:
            status = store.get_run(waiting.id).status.value
            return status if status not in ("queued", "running") else None

        assert wait_until(ended, timeout=60) == "completed"
        wait_until(lambda: daemon_request(project, "GET", "/healthz")[0] == 200, timeout=30)

        def files_settled() -> list:
            fires = [f for f in store.list_fires("drop", limit=0) if f.path]
            settled = [f for f in fires if f.outcome.value != "claimed"]
            return settled if len(settled) >= len(dropped) else []

        file_fires = wait_until(files_settled, timeout=60)
        assert sorted(f.path for f in file_fires) == sorted(dropped)  # each once, none lost

        def no_open_runs() -> bool:
            return all(
                r.status.value not in ("queued", "running") for r in store.list_runs(limit=0)
            )

        wait_until(no_open_runs, timeout=60)
        # Every file either ran its step exactly once or was refused with a recorded reason.
        ran = handled.read_text().splitlines() if handled.exists() else []
        assert len(ran) == len(set(ran))
        for fire in file_fires:
            assert fire.outcome.value in ("run", "started", "skipped"), fire
            if fire.outcome.value == "skipped":
                assert fire.reason
        recovered_at = datetime.now(UTC)

        def covered_past_recovery() -> list:
            fires = [f for f in store.list_fires("tick", limit=0) if f.nominal_time]
            latest = max((f.nominal_time for f in fires), default=None)
            return fires if latest and latest > recovered_at + timedelta(seconds=2) else []

        fires = sorted(wait_until(covered_past_recovery, timeout=30), key=lambda f: f.nominal_time)
        times = [f.nominal_time for f in fires]
        assert len(set(times)) == len(times)
        gaps = {b - a for a, b in itertools.pairwise(times)}
        assert gaps == {timedelta(seconds=1)}, "a nominal time has no fire record: " + str(
            [(f.nominal_time.time().isoformat(), f.outcome.value, f.reason) for f in fires]
        )

        wait_until(lambda: (state_dir / "ballast").exists(), timeout=30)
        database = state_dir / "pipesched.db"
        wal = database.with_name(database.name + "-wal")
        wait_until(lambda: not wal.exists() or wal.stat().st_size < 8 * 1024 * 1024, timeout=90)
        assert daemon.stop() == 0
        with sqlite3.connect(database) as check:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        held = daemon.events("store_write_held")
        deferred = daemon.events("fire_deferred")
        assert deferred, "the disk was never full for the daemon"
        print(
            f"disk full: {len(deferred)} fire times deferred, {len(held)} writes held, "
            f"{len(times)} nominal times recorded, {len(file_fires)} of {len(dropped)} files "
            f"settled, {len(ran)} handled by a step, 0 runs open"
        )
        log = daemon.log()
        assert "never retrieved" not in log
        for line in log.splitlines():
            if line.startswith("{") and json.loads(line).get("level") == "critical":
                raise AssertionError(line)
    finally:
        if store is not None:
            store.close()
        daemon.close()
