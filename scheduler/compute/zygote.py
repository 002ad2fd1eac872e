"""The zygote: a process that imports a compute target's ``warm_imports`` once and then forks
each step from itself, so a step that imports pandas starts with pandas already loaded.

Run as a program (``python zygote.py FD MODULE...``) by ``compute/warm.py``, on the interpreter
the steps use. Standard library only, and nothing of pipesched is imported here: whatever this
process holds, every step forked from it holds too.

The protocol on the socket ``FD`` (a stream; each message a 4-byte big-endian length and a JSON
object):

- zygote → daemon, once the imports are done: ``{"ready": true, "dirs": [...], "threads": N}``
  (the folders the imported modules came from, and the live Python threads), or ``{"ready":
  false, "error": "..."}``, after which the zygote exits;
- daemon → zygote: ``{"argv", "cwd", "env", "cgroup"}`` with the step's log descriptor attached
  (``SCM_RIGHTS``); zygote → daemon: ``{"pid": PID}`` or ``{"error": "..."}``.

Each step is forked twice: the zygote forks a middle process, which forks the step and exits at
once. The daemon is a child subreaper, so the step is re-parented to it: the daemon waits for the
step as for any child it spawned, learns its exit status from the kernel, and a zygote that dies
never takes a running step's status with it. The next step is forked ahead of its request (a
``Spare``, waiting on a socket of its own), so a request costs a message, not two forks.

The step then becomes what a spawned ``python script.py`` would be: its own session and process
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

Why not ``multiprocessing``'s forkserver: it is one per process for one interpreter, runs
pickled ``Process`` objects rather than a script as ``__main__``, and reports exit codes through
itself rather than leaving the step a child of the daemon.
"""

import contextlib
import gc
import importlib
import io
import json
import os
import runpy
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct(">I")
MAX_MESSAGE = 64 * 1024 * 1024
REPARENT_WAIT = 2.0  # seconds a step waits to be re-parented to the daemon
HERE = os.path.dirname(os.path.realpath(__file__))


def send(channel, message, fds=()):
    """Send one message; ``fds`` travel with its first bytes."""
    data = HEADER.pack(len(data := json.dumps(message).encode())) + data
    sent = socket.send_fds(channel, [data], list(fds)) if fds else 0
    if sent < len(data):  # never an empty send: the peer may have read all and gone
        channel.sendall(data[sent:])


def receive(channel):
    """One message and the descriptors sent with it; (None, []) at end of stream."""
    head, fds, _flags, _addr = socket.recv_fds(channel, HEADER.size, 4)
    while head and len(head) < HEADER.size:
        more = channel.recv(HEADER.size - len(head))
        if not more:
            break
        head += more
    if len(head) < HEADER.size:
        for fd in fds:
            os.close(fd)
        return None, []
    (size,) = HEADER.unpack(head)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes")
    body = bytearray()
    while len(body) < size:
        chunk = channel.recv(min(size - len(body), 1 << 20))
        if not chunk:
            raise EOFError("daemon closed the socket mid-message")
        body += chunk
    return json.loads(bytes(body)), fds


def fresh_signals():
    """The handlers this interpreter started with, taken before any warm module ran."""
    handlers = {}
    for number in signal.valid_signals():
        try:
            handler = signal.getsignal(number)
        except (OSError, ValueError):
            continue
        if handler is not None:
            handlers[number] = handler
    return handlers


def warm_up(modules, tolerant):
    """Import ``modules``; the folders their code came from, or the error of the first that
    failed (``tolerant``: a module that fails is left out instead)."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            if not tolerant:
                return None, f"import {name} failed: {type(exc).__name__}: {exc}"
            print(f"warm import {name} left out: {type(exc).__name__}: {exc}", file=sys.stderr)
    folders = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            folders.add(os.path.dirname(os.path.abspath(path)))
    return sorted(folders), None


def python_threads():
    threading = sys.modules.get("threading")
    return threading.active_count() if threading is not None else 1


def fork_twice(close_in_child):
    """Fork a process through a middle one that exits at once, so that it is re-parented to the
    daemon. In that process: ``("child", None)``, with its own session, once it has lost the
    middle parent (``close_in_child`` closed); in the zygote: ``("zygote", pid)``, the pid None
    when a fork failed."""
    reader, writer = os.pipe()
    try:
        middle = os.fork()
    except OSError:
        os.close(reader)
        os.close(writer)
        return "zygote", None
    if middle == 0:
        os.close(reader)
        middle = os.getpid()  # the child's first parent, which it waits to lose
        try:
            child = os.fork()
        except OSError:
            os._exit(1)
        if child == 0:
            os.close(writer)
            for thing in close_in_child:
                thing.close()
            os.setsid()
            deadline = time.monotonic() + REPARENT_WAIT
            while os.getppid() == middle and time.monotonic() < deadline:
                time.sleep(0.0002)
            return "child", None
        os.write(writer, str(child).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        reported = pipe.read()
    os.waitpid(middle, 0)  # once reaped, the child is the daemon's
    return "zygote", int(reported) if reported else None


class Spare:
    """A step forked ahead of its request, waiting on its own socket for the request: a fork
    of a zygote that holds pandas takes milliseconds, which a step then need not wait for."""

    def __init__(self, pid, channel):
        self.pid, self.channel = pid, channel


def make_spare(channel):
    """In the zygote: a new ``Spare``, or None. In the spare, once a request came: ``(request,
    log fd)``; a spare whose zygote went away exits."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    side, pid = fork_twice([channel, ours])
    if side == "zygote":
        theirs.close()
        if pid is None:
            ours.close()
            return None
        return Spare(pid, ours)
    try:
        request, fds = receive(theirs)
    except (OSError, ValueError, EOFError):
        request, fds = None, []
    if request is None or len(fds) != 1:
        os._exit(0)
    theirs.close()
    return request, fds[0]


def hand_to_spare(spare, request, fds):
    """The spare's pid once it has the request, or None when it is gone."""
    try:
        send(spare.channel, request, fds)
    except OSError:
        return None
    finally:
        spare.channel.close()
    return spare.pid


def fork_step(channel, request, fds):
    """Fork the step now. In the step: returns ``(request, log fd)``; in the zygote: reports the
    step's pid and returns None."""
    side, pid = fork_twice([channel])
    if side == "child":
        return request, fds[0]
    for fd in fds:
        os.close(fd)  # the zygote keeps no copy of the step's log pipe
    send(channel, {"pid": pid} if pid is not None else {"error": "fork failed"})
    return None


def serve(channel, signals):
    """Answer fork requests until the daemon closes the socket, with a spare step forked ahead
    of each. Returns only in a step."""
    spare = None
    while True:
        if spare is None:
            made = make_spare(channel)
            if isinstance(made, tuple):
                return made  # in the spare, which now has its request
            spare = made
        request, fds = receive(channel)
        if request is None:
            return None
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            send(channel, {"error": "a fork request carries exactly one log descriptor"})
            continue
        if spare is not None:
            pid = hand_to_spare(spare, request, fds)
            spare = None
            if pid is not None:
                for fd in fds:
                    os.close(fd)
                send(channel, {"pid": pid})
                continue
        forked = fork_step(channel, request, fds)
        if forked is not None:
            return forked


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
    """As ``cgroups.StepCgroup.join``, written again: the zygote imports nothing of pipesched."""
    try:
        fd = os.open(procs, os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, b"0")
    except OSError:
        pass
    finally:
        os.close(fd)


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
    import gc

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


def main():
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) == HERE:
        del sys.path[0]  # a step's sys.path[0] is its own script's folder
    signals = fresh_signals()
    channel = socket.socket(fileno=int(sys.argv[1]))
    modules = sys.argv[2:]
    tolerant = modules[:1] == ["--tolerant"]
    folders, error = warm_up(modules[1:] if tolerant else modules, tolerant)
    if error is not None:
        send(channel, {"ready": False, "error": error})
        return None
    gc.freeze()  # what the zygote holds is never scanned again, in it or in a step
    send(channel, {"ready": True, "dirs": folders, "threads": python_threads()})
    forked = serve(channel, signals)
    if forked is None:
        return None
    request, log_fd = forked
    become_step(request, log_fd, signals)
    return request


if __name__ == "__main__":
    step = main()
    if step is not None:
        run_step(step)
