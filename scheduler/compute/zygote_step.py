"""A process forked by the zygote (``zygote.py``) becoming the step, and ending as one.

It becomes what a spawned ``python script.py`` would be: its own session and process
group, stdin from ``/dev/null``, stdout and stderr into its log, its working folder, exactly its
environment, its ``sys.argv`` and ``sys.path[0]``, the signal handlers and mask a fresh
interpreter has, ``random`` and NumPy's global generator reseeded from ``os.urandom``, and its
script run as ``__main__`` (``runpy``). Uncaught exceptions are printed by ``sys.excepthook`` and
exit 1; ``sys.exit`` and signals end it as they would end a spawned step. At its end it waits for
its threads, runs its ``atexit`` functions and flushes what it left open, as the interpreter's
exit does, but does not free the heap it shares with the zygote (``finish``).

What a step can still tell: ``sys.modules`` holds the warm modules before it imports them,
``sys.orig_argv`` is the zygote's, the hash seed (``PYTHONHASHSEED``) is shared by every step
forked from one zygote, and ``os.getppid()`` names the daemon only once the middle process has
gone (the step waits for that before its script starts).
"""

import contextlib
import gc
import io
import json
import os
import runpy
import signal
import sys
from pathlib import Path

from scheduler.compute.cgroups import StepCgroup


def become_step(request, log_fd, signals):
    """Turn this process (forked, in its own session, a child of the daemon) into the step a
    spawn would have started."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    cgroup = request.get("cgroup")
    if cgroup:
        join_cgroup(cgroup)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    show_environment(request["env"])
    if request.get("learn"):
        learn_imports(request["learn"])
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    for number, handler in signals.items():
        with contextlib.suppress(OSError, ValueError, TypeError):
            signal.signal(number, handler)
    reseed()


def learn_imports(folder):
    """At exit, note in ``folder`` the installed modules the step imported that the zygote had
    not (``warm_imports: auto``). The step's own modules are left out: they change as it is
    edited."""
    import atexit
    import sysconfig

    before = set(sys.modules)
    paths = sysconfig.get_paths()
    roots = tuple(
        os.path.join(paths[key], "")
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if paths.get(key)
    )

    def note():
        names = set()
        for name, module in list(sys.modules.items()):
            top = name.partition(".")[0]
            if name in before or top in names:
                continue
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and os.path.abspath(path).startswith(roots):
                names.add(top)
        if not names:
            return
        try:
            target = os.path.join(folder, f"{os.getpid()}.json")
            with open(target + ".tmp", "w") as handle:
                json.dump(sorted(names), handle)
            os.replace(target + ".tmp", target)
        except OSError:
            pass

    atexit.register(note)


#: Started with this variable, the zygote's ``/proc/PID/environ`` has room for a step's own.
ENVIRONMENT_ROOM = "PIPESCHED_ENVIRONMENT_ROOM"
#: Written first: they tell which run, step and attempt a process belongs to.
MARKS = ("PIPESCHED_RUN_ID", "PIPESCHED_STEP", "PIPESCHED_ATTEMPT")


def show_environment(env):
    """Make ``/proc/PID/environ`` show the step's environment, as a spawned step's does: it is
    how pipesched (and ``ps e``) finds the processes of a run. That file shows the memory where
    the environment was placed when the zygote started (a fork does not change it), so the
    step's variables are written over it, the run's marks first, as many as fit in the room
    the zygote was started with; ``setproctitle`` rewrites this memory the same way. Python's
    ``os.environ`` and the C library's view no longer point there once the environment was
    replaced."""
    import ctypes

    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50, 51)
    except (OSError, IndexError, ValueError):
        return
    if end <= start:
        return
    entries = [f"{k}={env[k]}".encode() + b"\0" for k in MARKS if k in env]
    entries += [f"{k}={v}".encode() + b"\0" for k, v in env.items() if k not in MARKS]
    data = bytearray()
    for entry in entries:
        if len(data) + len(entry) > end - start:
            break
        data += entry
    data += b"\0" * (end - start - len(data))
    ctypes.memmove(start, bytes(data), len(data))


def join_cgroup(procs):
    """Into the step's cgroup (``procs``: its ``cgroup.procs`` file), as a spawned step joins it."""
    StepCgroup(Path(procs).parent).join()


def reseed():
    """Every step forked from one zygote would otherwise draw the same random numbers."""
    import random

    random.seed()
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def run_step(request):
    """Run the step's script (or module) as ``__main__``, as the interpreter would, then exit
    as ``finish`` says."""
    argv = request["argv"][1:]
    safe_path = False
    while argv and argv[0] == "-P":
        safe_path, argv = True, argv[1:]
    module = None
    if argv[:1] == ["-m"]:
        module, argv = argv[1], argv[1:]
    if not safe_path:
        first = os.getcwd() if module else os.path.dirname(os.path.realpath(argv[0]))
        sys.path.insert(0, first)
    sys.argv = list(argv)
    status = 0
    try:
        if module:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exc:
        status = exit_status(exc)
    except BaseException as exc:
        trace = exc.__traceback__
        ours = (__file__, runpy.__file__, "<frozen runpy>")
        while trace is not None and trace.tb_frame.f_code.co_filename in ours:
            trace = trace.tb_next
        sys.excepthook(type(exc), exc.with_traceback(trace), trace)
        status = -signal.SIGINT if isinstance(exc, KeyboardInterrupt) else 1
    finish(status)


def exit_status(exc):
    """The exit status ``SystemExit`` gives, as the interpreter gives it."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1


def finish(status):
    """End the step as the interpreter's exit would in every way a step can see: wait for its
    threads, run its ``atexit`` functions, flush the files it left open and its output. What is
    skipped is freeing the heap, which here would write to every page shared with the zygote
    (reference counts) and copy them all: hundreds of milliseconds with pandas loaded.
    Objects of the script freed before this point were closed as usual."""
    import atexit

    threading = sys.modules.get("threading")
    if threading is not None:
        with contextlib.suppress(Exception):
            threading._shutdown()
    atexit._run_exitfuncs()
    for thing in gc.get_objects():  # the step's own: the zygote's were frozen
        if isinstance(thing, io.IOBase):
            with contextlib.suppress(Exception):
                if not thing.closed:
                    thing.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if status == -signal.SIGINT:  # as Python ends on an uncaught KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(status & 0xFF)
