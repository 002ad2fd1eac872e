"""The zygote: a process that imports a compute target's ``warm_imports`` once and then forks
each step from itself, so a step that imports pandas starts with pandas already loaded.

Run as a program (``python zygote.py FD MODULE...``) by ``compute/zygote_process.py``, on
pipesched's own interpreter. It imports the standard library and, of pipesched, only what a step
needs anyway: whatever this process holds, every step forked from it holds too.

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

What the forked process does to become the step is ``zygote_step.py``.

Why not ``multiprocessing``'s forkserver: it is one per process for one interpreter, runs
pickled ``Process`` objects rather than a script as ``__main__``, and reports exit codes through
itself rather than leaving the step a child of the daemon.
"""

import gc
import importlib
import json
import os
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
    # lazy: only a forked step needs it, and only once it is one
    from scheduler.compute.zygote_step import become_step

    become_step(request, log_fd, signals)
    return request


if __name__ == "__main__":
    step = main()
    if step is not None:
        from scheduler.compute.zygote_step import run_step  # lazy: as in main

        run_step(step)
