"""A step attempt's log, capped at ``max_log_bytes``: the head and the tail are kept, with a marker
line where bytes were dropped.

The step's stdout and stderr are the write end of one pipe (one descriptor for both, so the log
keeps the order in which the step wrote them, as one shared file did). A thread of our own moves
what arrives into the log file with ``os.splice``: the bytes go from the pipe to the file inside
the kernel, never through Python objects, so the daemon holds none of a step's output in memory.
A step printing many short lines pays nothing per line: its writes land in the pipe's buffer
(enlarged to 1 MiB where the kernel allows), and each wake-up of the thread moves all that has
piled up in one call.

Up to the cap, the log is the output as written. The first write that would pass the cap
compacts the file: the first half of the budget (the head) stays; a marker line follows
(``[pipesched] N bytes dropped here (max_log_bytes: CAP)``, padded to a fixed width so that it
can be rewritten in place); then the last quarter of the budget of output (the tail, starting at
a line's beginning when one starts near). Output then appends after the tail until the file
reaches the cap again, and the next compaction keeps the latest quarter and adds to the count.
The file never exceeds the cap; each compaction copies a quarter of the budget
(``copy_file_range``, also in the kernel) for every quarter of new output, so the cost stays one
copy per byte whatever the step prints. The source and target ranges never overlap: the target
ends where the kept quarter starts.

Someone following the log while it is compacted sees the file shrink; what they have read stays
right, and the bytes dropped are the ones the marker counts.

When the log cannot be written (a full disk), the thread goes on reading and discarding, so the
step never blocks on a pipe nobody empties; the loss is reported once in the daemon's log.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import threading
from concurrent.futures import Future
from pathlib import Path

from scheduler.core.lazylog import lazy_logger

log = lazy_logger("scheduler.compute.logcap")

PIPE_SIZE = 1 << 20  # the pipe's buffer: /proc/sys/fs/pipe-max-size is 1 MiB by default
CHUNK = 1 << 20  # at most this many bytes per splice or read
MARKER_WIDTH = 96  # the marker line, padded: room for 20-digit counts
MIN_LOG_BYTES = 4 * MARKER_WIDTH
LINE_LOOKAHEAD = 4096  # the tail starts after the first newline within this many bytes
# errno values that mean "this file or kernel cannot splice / copy_file_range": fall back to
# read and write in user space, which every file supports.
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV, errno.EBADF}


class CappedLog:
    """The pipe a step writes to and the thread that files what arrives.

    ``write_fd`` goes to the step as stdout and stderr; ``started()`` closes our copy of it (so
    the pipe ends when the step's processes close theirs). ``finished`` resolves once the
    pipe has ended (or ``stop()`` was called) and everything read is in the file."""

    def __init__(self, path: Path, max_bytes: int | None) -> None:
        if max_bytes is not None and max_bytes < MIN_LOG_BYTES:
            raise ValueError(f"max_log_bytes must be at least {MIN_LOG_BYTES}")
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0
        self.finished: Future[None] = Future()
        self._file = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._read, self.write_fd = os.pipe2(os.O_CLOEXEC)
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        os.set_blocking(self._read, False)
        with contextlib.suppress(OSError):  # a smaller buffer only means more wake-ups
            fcntl.fcntl(self._read, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        self.pipe_id = f"pipe:[{os.fstat(self._read).st_ino}]"  # as /proc/PID/fd shows it
        self._pos = os.fstat(self._file).st_size  # bytes already there (a note) count as head
        self._head = self._tail_start = 0
        self._tail = 0
        if max_bytes is not None:
            budget = max_bytes - MARKER_WIDTH
            self._head = budget // 2
            self._tail = (budget - self._head) // 2
        self._splice = hasattr(os, "splice")
        self._copy_range = hasattr(os, "copy_file_range")
        self._broken: OSError | None = None
        self._lock = threading.Lock()  # stop() never writes to a descriptor the thread closed
        self._closed = False
        self._thread = threading.Thread(
            target=self._pump, name=f"pipesched-log-{path.name}", daemon=True
        )
        self._thread.start()

    def started(self) -> None:
        """The step has its copy of the write end: close ours."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def stop(self) -> None:
        """Stop reading now (something we could not kill still holds the pipe): what was
        read is kept, and a later write by that process fails with a broken pipe."""
        with self._lock:
            if not self._closed:
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"x")

    # ---- the thread -------------------------------------------------------------------------

    def _pump(self) -> None:
        poller = select.poll()
        poller.register(self._read, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        try:
            while True:
                events = dict(poller.poll())
                if self._wake_read in events:
                    self._move_available()
                    break
                if events and not self._move_available():
                    break  # every write end is closed
        finally:
            with self._lock:
                self._closed = True
                for fd in (self._read, self._file, self._wake_read, self._wake_write):
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self.finished.set_result(None)

    def _move_available(self) -> bool:
        """Move what the pipe holds; False at its end."""
        while True:
            try:
                moved = self._move_once()
            except BlockingIOError:
                return True
            except Exception as exc:  # a bug of ours: never leave the step writing into a full pipe
                if self._broken is not None:
                    raise
                log.exception("step_log_failed", path=str(self.path))
                self._broken = OSError(errno.EIO, str(exc))
                continue
            if moved == 0:
                return False

    def _move_once(self) -> int:
        """Move up to one chunk from the pipe to the file; 0 at the pipe's end."""
        if self._broken is not None:
            return len(os.read(self._read, CHUNK))
        count = CHUNK
        if self.max_bytes is not None:
            if self._pos >= self.max_bytes:
                self._compact()
                if self._broken is not None:
                    return self._move_once()
            count = min(count, self.max_bytes - self._pos)
        if self._splice:
            try:
                moved = os.splice(
                    self._read, self._file, count, offset_dst=self._pos, flags=os.SPLICE_F_NONBLOCK
                )
            except BlockingIOError:
                raise
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    return self._lose(exc, len(os.read(self._read, count)))
                self._splice = False
            else:
                self._pos += moved
                return moved
        data = os.read(self._read, count)
        try:
            _write_all(self._file, data, self._pos)
        except OSError as exc:
            return self._lose(exc, len(data))
        self._pos += len(data)
        return len(data)

    def _lose(self, exc: OSError, count: int) -> int:
        """The log cannot be written: read on and discard, so the step never blocks."""
        self._broken = exc
        log.error("step_log_unwritable", path=str(self.path), error=str(exc))
        return count or 1  # a read of 0 bytes would have ended the pipe: go on regardless

    # ---- compaction -------------------------------------------------------------------------

    def _compact(self) -> None:
        """The file is full: keep the head, the marker and the latest ``_tail`` bytes."""
        first = self._tail_start == 0
        if first:
            self._tail_start = self._head + MARKER_WIDTH
            kept_from = self._pos - self._tail
            dropped = kept_from - self._head
        else:
            kept_from = self._pos - self._tail
            dropped = kept_from - self._tail_start
        skip = _line_start(self._file, kept_from, min(LINE_LOOKAHEAD, self._tail))
        kept_from += skip
        dropped += skip
        kept = self._pos - kept_from
        try:
            self._copy(kept_from, self._tail_start, kept)
            self.dropped += dropped
            marker = _marker(self.dropped, self.max_bytes or 0, self._head_ends_line())
            _write_all(self._file, marker, self._head)
            os.ftruncate(self._file, self._tail_start + kept)
        except OSError as exc:
            self._lose(exc, 0)
            return
        self._pos = self._tail_start + kept

    def _head_ends_line(self) -> bool:
        return self._head == 0 or os.pread(self._file, 1, self._head - 1) == b"\n"

    def _copy(self, src: int, dst: int, count: int) -> None:
        while count > 0:
            if self._copy_range:
                try:
                    done = os.copy_file_range(self._file, self._file, count, src, dst)
                except OSError as exc:
                    if exc.errno not in _UNSUPPORTED:
                        raise
                    self._copy_range = False
                    continue
                if done == 0:  # nothing copied: let pread/pwrite say why
                    self._copy_range = False
                    continue
            else:
                data = os.pread(self._file, min(count, CHUNK), src)
                if not data:
                    raise OSError(errno.EIO, "log shrank while being compacted")
                _write_all(self._file, data, dst)
                done = len(data)
            src, dst, count = src + done, dst + done, count - done


def _marker(dropped: int, cap: int, head_ends_line: bool) -> bytes:
    text = f"[pipesched] {dropped} bytes dropped here (max_log_bytes: {cap})"
    lead = "" if head_ends_line else "\n"
    return (lead + text).ljust(MARKER_WIDTH - 1).encode() + b"\n"


def _line_start(fd: int, offset: int, lookahead: int) -> int:
    """How many bytes after ``offset`` the next line starts (0 when none starts soon)."""
    if lookahead <= 0:
        return 0
    window = os.pread(fd, lookahead, offset - 1 if offset else 0)
    if offset and window[:1] == b"\n":
        return 0
    newline = window.find(b"\n", 1 if offset else 0)
    return 0 if newline < 0 else newline + (0 if offset else 1)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
