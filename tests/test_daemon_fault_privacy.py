"""Another local user on a host without systemd (nobody sets ``StateDirectory=`` modes for us):
after a real daemon started under a umask of 0o022 or 0o002 has run a step and a token was
made, that user can read neither the store (with the token hashes) nor any step log, and cannot
connect to the control socket. Even in a state directory its owner created world-readable,
those files and the socket are private themselves.

The other user is ``nobody``, probing from a system Python whose uid and gid it takes before it
starts; a file the test makes readable to all is read by the same probe, so a probe that could
read nothing at all would fail the test instead of passing it."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.services.daemon_http import socket_path
from tests.conftest import wait_until
from tests.projects import Project, make_project

SECRET = "secret-printed-by-the-step"

# argv: JSON list of paths. For each: what an open for reading (a listing for a folder, a
# connect for a socket) gave, as "ok" or the errno's name.
PROBE = """
import errno, json, os, socket, stat, sys
def probe(path):
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            os.listdir(path)
        elif stat.S_ISSOCK(mode):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
        else:
            with open(path, "rb") as handle:
                handle.read(1)
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
print(json.dumps({path: probe(path) for path in json.loads(sys.argv[1])}))
"""

SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3")


def nobody() -> tuple[int, int]:
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def as_nobody() -> None:
    uid, gid = nobody()
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def run_as_nobody(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        preexec_fn=as_nobody,
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        check=False,
    )


@pytest.fixture(scope="module")
def system_python() -> str:
    """A Python another user can run (ours may live under /root)."""
    if os.geteuid() != 0:
        pytest.skip("probing as another user needs root, to take that user's uid and gid")
    try:
        nobody()
    except KeyError:
        pytest.skip("no user 'nobody' to probe as")
    for candidate in SYSTEM_PYTHONS:
        if os.path.exists(candidate) and run_as_nobody([candidate, "-c", "pass"]).returncode == 0:
            return candidate
    pytest.skip(f"none of {', '.join(SYSTEM_PYTHONS)} runs as nobody")


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A project folder every user may enter (pytest's own tmp folders are 0700: behind
    them nothing would be readable to another user whatever pipesched did)."""
    root = Path(tempfile.mkdtemp(prefix="pipesched-privacy-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The umask the daemon (and the commands the test runs) start with."""
    value: int = request.param
    old = os.umask(value)
    try:
        yield value
    finally:
        os.umask(old)


def project_in(root: Path) -> Project:
    project = make_project(root, shutdown_grace="1s")
    project.pipeline(
        "talk",
        "steps:\n  s: {type: python_script, script: talk.py, allow_reuse: false}\n",
        {
            "talk.py": f"""
                from scheduler.runtime import Run
                print("{SECRET}", flush=True)
                Run.get_context().log("loss", 0.5)
            """
        },
    )
    project.schedules("schedules:\n  - {name: talk, pipeline: talk, interval: 1h}\n")
    return project


def exercise(project: Project, daemons) -> None:
    """Start the daemon, make a token, run a step to its end."""
    daemon = daemons(project).start()
    made = project.cli("token", "create", "probe")
    assert made.returncode == 0, made.stderr
    assert project.cli("schedule", "trigger", "talk").returncode == 0

    def completed() -> bool:
        with project.store() as store:
            runs = store.list_runs(limit=0)
        return bool(runs) and runs[0].status == "completed"

    wait_until(completed, timeout=30)
    assert daemon.proc is not None and daemon.proc.poll() is None


def state_paths(project: Project) -> list[Path]:
    return [project.state_dir, *sorted(project.state_dir.rglob("*"))]


def probe(system_python: str, paths: list[Path]) -> dict[str, str]:
    result = run_as_nobody([system_python, "-c", PROBE, json.dumps([str(p) for p in paths])])
    assert result.returncode == 0, result.stderr
    answers: dict[str, str] = json.loads(result.stdout)
    return answers


def secrets_of(project: Project) -> list[Path]:
    """The store and its journal files, every step log, the control socket."""
    state = project.state_dir
    store = [state / n for n in ("pipesched.db", "pipesched.db-wal", "pipesched.db-shm")]
    logs = sorted(state.rglob("*.log"))
    assert logs and any(SECRET in log.read_text() for log in logs), "the step's log is there"
    sock = socket_path(state)
    assert stat.S_ISSOCK(sock.stat().st_mode)
    return [p for p in store if p.exists()] + logs + [sock]


def control(project: Project) -> Path:
    """A file readable by all in the same shared folder: the probe must read it."""
    assert stat.S_IMODE(project.config_path.stat().st_mode) & 0o004
    return project.config_path


@pytest.mark.parametrize("umask", [0o022, 0o002], indirect=True, ids=["umask-022", "umask-002"])
def test_another_user_reads_nothing_in_a_state_directory_the_daemon_made(
    system_python, shared_root, umask, daemons
):
    project = project_in(shared_root)
    assert not project.state_dir.exists()  # the daemon creates it
    exercise(project, daemons)

    answers = probe(system_python, [control(project), *state_paths(project)])
    assert answers.pop(str(control(project))) == "ok"
    assert answers[str(project.state_dir)] == "EACCES"
    assert {p for p, a in answers.items() if a == "ok"} == set()
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in secrets_of(project)}
    assert stat.S_IMODE(project.state_dir.stat().st_mode) == 0o700
    assert {p: m & 0o077 for p, m in modes.items()} == dict.fromkeys(modes, 0)


@pytest.mark.parametrize("umask", [0o002], indirect=True, ids=["umask-002"])
def test_the_store_logs_and_socket_stay_private_in_a_world_readable_state_directory(
    system_python, shared_root, umask, daemons, capsys
):
    project = project_in(shared_root)
    project.state_dir.mkdir(mode=0o755)
    os.chmod(project.state_dir, 0o755)  # its owner chose this mode: it is kept
    exercise(project, daemons)

    secrets = secrets_of(project)
    answers = probe(system_python, [control(project), *secrets])
    assert answers.pop(str(control(project))) == "ok"
    assert {p: a for p, a in answers.items() if a == "ok"} == {}
    assert stat.S_IMODE(project.state_dir.stat().st_mode) == 0o755

    # What else such a folder shows another user: reported, for the record.
    everything = probe(system_python, state_paths(project))
    readable = sorted(
        str(Path(p).relative_to(project.state_dir)) for p, a in everything.items() if a == "ok"
    )
    with capsys.disabled():
        print(f"\nreadable to another user in a 0755 state directory: {readable}")
