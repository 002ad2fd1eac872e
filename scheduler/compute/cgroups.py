"""A cgroup of its own for each step, where systemd delegated one to pipesched.

Under systemd with ``Delegate=yes`` (cgroup v2), the unit's cgroup belongs to the daemon: it
may create child cgroups in it and move processes between them. Each step then gets its own,
``<unit cgroup>/step-<leader pid>``, and whatever the step starts stays in it, however it
detaches (``setsid()``, double forks, a new environment, closed descriptors): the kernel, not
a heuristic, says which processes are the step's. Stopping a step writes ``cgroup.kill``, which
kills every process in the cgroup at once (Linux 5.14), and the empty cgroup is removed.

Delegation is recognised the way systemd marks it: the ``trusted.delegate`` (or, for a user
manager, ``user.delegate``) extended attribute set to ``1`` on the unit's cgroup, which must
also be writable by us. Anywhere else (no systemd, no ``Delegate=``, cgroup v1 only) there is
no tree and steps run as before, found by ``reaper.py``; both work together where there is one.

The step's process joins its cgroup between fork and exec, so nothing of the step ever runs
outside it. Python offers no way to spawn straight into a cgroup (``clone3`` with
``CLONE_INTO_CGROUP``); a ``preexec_fn`` is, in general, unsafe in a process with threads,
because the child may need a lock another thread held at the fork. This one only opens and
writes a file whose path was encoded beforehand, which takes no such lock
(``StepCgroup.join``).

Filesystem writes under /sys/fs/cgroup: cheap, but I/O: callers on an event loop may call them
(each is one small write) only where the spawn itself already is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from scheduler.core.lazylog import lazy_logger

log = lazy_logger("scheduler.compute.cgroups")

DELEGATE_XATTRS = ("trusted.delegate", "user.delegate")
STEP_PREFIX = "step-"
LEFTOVER_DEADLINE = 10.0  # how long start-up waits for a killed daemon's steps to die


class StepCgroup:
    """One step's cgroup: add its leader, list and kill what is in it, remove it once empty."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._procs = os.fsencode(path / "cgroup.procs")

    def join(self) -> None:
        """Move the calling process into this cgroup (``0`` means "me"). Run in the step's
        child between fork and exec (``preexec_fn``), so nothing of the step ever runs outside
        it: two system calls on a path made beforehand, no allocation worth the name and no
        lock that another thread of the daemon could have held at the fork. A cgroup that
        cannot be joined leaves the step where it was, found by the reaper."""
        try:
            fd = os.open(self._procs, os.O_WRONLY)
        except OSError:
            return
        try:
            os.write(fd, b"0")
        except OSError:
            pass
        finally:
            os.close(fd)

    def pids(self) -> set[int]:
        """Every live process in the cgroup (and in any cgroup a step made below it)."""
        found: set[int] = set()
        for procs in self.path.glob("**/cgroup.procs"):  # "**" matches the cgroup itself too
            with contextlib.suppress(OSError, ValueError):
                found.update(int(line) for line in procs.read_text().split())
        return found

    def populated(self) -> bool:
        try:
            events = (self.path / "cgroup.events").read_text()
        except OSError:
            return False
        return "populated 1" in events

    def kill(self) -> None:
        """SIGKILL to every process in the cgroup, at once (``cgroup.kill``); one by one on a
        kernel without it."""
        try:
            (self.path / "cgroup.kill").write_text("1\n")
            return
        except OSError:
            pass
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> bool:
        """Remove the cgroup (and any below it) once empty; False while processes remain."""
        for child in sorted(self.path.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            if child != self.path:
                with contextlib.suppress(OSError):
                    child.rmdir()
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


class CgroupTree:
    """The cgroup systemd delegated to this process, where step cgroups are made."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def delegated_to_this_process(cls) -> CgroupTree | None:
        root = own_cgroup_dir()
        if root is None or not is_delegated(root):
            return None
        return cls(root)

    def new_step(self) -> StepCgroup | None:
        """A new, empty cgroup for a step about to be spawned into it (``StepCgroup.join``);
        None when the kernel refuses (the step runs on, found by the reaper)."""
        # os.urandom, not uuid: uuid imports platform, a cost on every `pipesched run`
        path = self.root / f"{STEP_PREFIX}{os.urandom(6).hex()}"
        try:
            path.mkdir()
        except OSError as error:
            log.warning("cgroup_not_created", cgroup=str(path), error=str(error))
            return None
        return StepCgroup(path)

    def clear_leftovers(self) -> int:
        """Step cgroups a killed daemon left: their processes killed, the cgroups removed.
        Blocks (at most ``LEFTOVER_DEADLINE`` per cgroup): call it from a thread."""
        cleared = 0
        for path in self.root.glob(f"{STEP_PREFIX}*"):
            if not path.is_dir():
                continue
            cgroup = StepCgroup(path)
            if cgroup.populated():
                cgroup.kill()
            cleared += 1
            deadline = time.monotonic() + LEFTOVER_DEADLINE
            while not cgroup.remove():  # killed processes leave the cgroup as they die
                if time.monotonic() >= deadline:
                    log.warning("cgroup_left", cgroup=str(path), pids=sorted(cgroup.pids()))
                    break
                time.sleep(0.02)
        return cleared


def own_cgroup_dir() -> Path | None:
    """This process's cgroup v2 directory, or None without a cgroup v2 hierarchy."""
    mount = cgroup2_mount()
    if mount is None:
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            return mount / path.lstrip("/")
    return None


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup``, or
    ``/sys/fs/cgroup/unified`` on a hybrid system)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        before, _, after = line.partition(" - ")
        if after.split(" ", 1)[0] == "cgroup2":
            return Path(before.split(" ")[4])
    return None


def is_delegated(path: Path) -> bool:
    """systemd's mark of a delegated cgroup, and the right to write in it."""
    if not os.access(path, os.W_OK):
        return False
    for name in DELEGATE_XATTRS:
        try:
            if os.getxattr(path, name).strip() == b"1":
                return True
        except OSError:
            continue
    return False


_tree: list[CgroupTree | None] = []


def delegated_tree() -> CgroupTree | None:
    """The delegated tree of this process, looked up once (None: there is none)."""
    if not _tree:
        _tree.append(CgroupTree.delegated_to_this_process())
    return _tree[0]
