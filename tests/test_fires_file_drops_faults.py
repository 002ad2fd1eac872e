"""File drops under faults: a kernel queue overflow, too few inotify watches, a network
filesystem. The errors and filesystem types are injected (no test lowers a system-wide limit or
mounts a share); the overflow is real: the observer's reader is stalled while files arrive."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from scheduler.fires.file_events import make_observer, mount_fs_type
from tests.conftest import wait_until
from tests.file_drops_harness import Service, file_drop_project, on_change


@pytest.fixture
def project(tmp_path: Path):
    project = file_drop_project(tmp_path)
    (project.datastore / "inbox").mkdir()
    return project


@pytest.fixture
def started(project):
    made: list[Service] = []

    def start(spec: dict, **kwargs) -> Service:
        service = Service(project, on_change(**spec), **kwargs).start()
        made.append(service)
        return service

    yield start
    for service in made:
        service.close()


def out_of_watches(kind: str, interval: float | None, on_overflow):
    if kind == "inotify":
        raise OSError(errno.ENOSPC, "inotify watch limit reached")
    return make_observer(kind, interval, on_overflow)


def test_too_few_inotify_watches_names_the_setting_and_polls(project, started):
    with capture_logs() as logs:
        service = started({"settle": "0.1s"}, observer_factory=out_of_watches)
    errors = [e for e in logs if e["event"] == "file_watch_limit"]
    assert errors and "fs.inotify.max_user_watches" in errors[0]["hint"]
    assert errors[0]["log_level"] == "error"
    assert service.status()["observer"] == "polling"
    (project.datastore / "inbox" / "seen.csv").write_text("x")
    wait_until(lambda: service.triggers() == ["file:inbox/seen.csv"], timeout=10)


@pytest.mark.parametrize("fs_type", ["nfs", "nfs4", "cifs", "smb3", "fuse.sshfs"])
def test_a_network_filesystem_is_polled_and_the_log_names_its_type(project, started, fs_type):
    with capture_logs() as logs:
        service = started({"settle": "0.1s"}, fs_type=lambda path: fs_type)
    assert service.status()["observer"] == "polling"
    assert [e["fs_type"] for e in logs if e["event"] == "file_watch_polling"] == [fs_type]


def test_a_local_filesystem_uses_inotify(project, started):
    service = started({"settle": "0.1s"}, fs_type=lambda path: "ext4")
    assert service.status()["observer"] == "inotify"


def test_the_mount_probe_reads_the_filesystem_type_of_the_longest_mount(tmp_path: Path):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "40 22 0:50 / /mnt/share rw,relatime shared:20 - nfs4 server:/export rw,vers=4.2\n"
        "41 22 0:51 / /mnt/share\\040two rw - cifs //host/s rw\n"
    )
    assert mount_fs_type(Path("/mnt/share/inbox"), str(mountinfo)) == "nfs4"
    assert mount_fs_type(Path("/mnt/share two/x"), str(mountinfo)) == "cifs"
    assert mount_fs_type(Path("/mnt/shared"), str(mountinfo)) == "ext4"


@pytest.mark.slow
def test_a_kernel_queue_overflow_is_counted_and_the_rescan_handles_every_file_once(
    project, started
):
    """The overflow, in-process: the observer's reader is held (as SIGSTOP would) while more
    events arrive than the kernel queues (fs.inotify.max_queued_events), so IN_Q_OVERFLOW."""
    service = started({"mode": "batch", "settle": "0.2s", "max_batch_files": 5000})
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    count = limit // 2 + 2000  # each in-place write is >= 2 events (create, close)
    folder = project.datastore / "inbox"
    reader_lock = service.watcher()._observer._inotify_fd._lock
    with capture_logs() as logs:
        with reader_lock:
            for i in range(count):
                fd = os.open(folder / f"f{i:06d}.csv", os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, b"x")
                os.close(fd)
        wait_until(lambda: service.watcher().overflows >= 1, timeout=60)
        wait_until(lambda: len(service.ledger()) >= count, timeout=90, interval=0.2)
        wait_until(lambda: sum(_batch_size(r) for r in service.runs()) >= count, timeout=90)
    ledger = service.ledger()
    assert len(ledger) == count and len({f.path for f in ledger}) == count
    assert sum(_batch_size(r) for r in service.runs()) == count
    assert any(e["event"] == "file_watch_overflow" for e in logs)


def _batch_size(run) -> int:
    return int(run.trigger.split(":")[1])
