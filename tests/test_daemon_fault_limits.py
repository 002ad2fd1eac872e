"""Oversized input at a real ``pipesched daemon``: a 50 MB request body is refused with 413 before
it is read whole (declared or chunked), a 10 MB experiment name under a body limit that lets it
through is a 422 naming the field, and a step printing 50 MiB under a 1 MiB ``max_log_bytes``
leaves a log with its head, a marker line and its tail. The daemon's resident memory (VmRSS in
/proc/PID/status) is measured before and after each and must stay flat."""

from __future__ import annotations

import json
import re
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from scheduler.services.tokens import create_token
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

MiB = 1024 * 1024
BODY_LIMIT = 16 * MiB  # room for the 10 MB name to reach the validation of its field
LOG_CAP = MiB
HUGE_BODY = 50_000_000
HUGE_NAME = 10_000_000
FLAT = 40 * MiB  # a generous bound on the daemon's growth: what it holds must not scale
LINE = 14  # b"line 00000000\n"
LOUD_LINES = 50 * MiB // LINE

# argv: LINES. Prints "line 00000000\n" .. in blocks, so 50 MiB takes a second, not a minute.
LOUD = """
import sys
lines, block = int(sys.argv[1]), 100_000
out = sys.stdout.buffer
for start in range(0, lines, block):
    out.write(b"".join(b"line %08d\\n" % i for i in range(start, min(start + block, lines))))
out.flush()
"""


@dataclass
class Daemon:
    process: DaemonProcess
    project: Project
    url: str
    token: str

    def rss(self) -> int:
        return self.status_bytes("VmRSS")

    def peak(self) -> int:
        return self.status_bytes("VmHWM")

    def status_bytes(self, field: str) -> int:
        assert self.process.proc is not None
        with open(f"/proc/{self.process.proc.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/PID/status")

    def submit(self, body: object) -> requests.Response:
        return requests.post(
            f"{self.url}/api/v1/pipelines/loud/runs",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=60,
        )

    def runs(self) -> list:
        with self.project.store() as store:
            return store.list_runs(limit=0)


@pytest.fixture
def daemon(tmp_path: Path, daemons) -> Iterator[Daemon]:
    project = make_project(
        tmp_path,
        api={"host": "127.0.0.1", "port": 0, "max_body_bytes": "16MiB"},
        max_log_bytes="1MiB",
        shutdown_grace="1s",
    )
    project.pipeline(
        "loud",
        """
        parameters:
          lines: {type: int, default: 10}
        steps:
          s: {type: python_script, script: loud.py, arguments: ["${{parameters.lines}}"], allow_reuse: false}
        """,
        {"loud.py": LOUD},
    )
    with project.store() as store:
        token = create_token(store, "limits")
    process: DaemonProcess = daemons(project).start()
    (listening,) = process.events("api_listening")
    yield Daemon(process, project, listening["url"], token)
    assert process.stop() == 0


def report(label: str, before: int, after: int, peak: int) -> None:
    print(
        f"{label}: VmRSS {before / MiB:.1f} -> {after / MiB:.1f} MiB"
        f" ({(after - before) / MiB:+.1f} MiB), VmHWM {peak / MiB:.1f} MiB"
    )


def post_huge(daemon: Daemon, size: int, *, chunked: bool) -> tuple[int, dict, int]:
    """POST ``size`` bytes of a JSON body, watching for an early answer between blocks, as a
    client that streams it would: (status, answer, bytes sent before the answer came)."""
    address = urlsplit(daemon.url)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = (
        f"POST /api/v1/pipelines/loud/runs HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: Bearer {daemon.token}\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n"
    ).encode()
    block = b"x" * MiB
    sent = 0
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(head)
        try:
            while sent < size and not select.select([sock], [], [], 0)[0]:
                piece = block[: size - sent]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked and sent >= size:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered and closed: read what it said
        answer = read_answer(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(body), sent


def read_answer(sock: socket.socket) -> bytes:
    """One HTTP answer with a Content-Length, whether or not the connection is kept open."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
            head, found, body = answer.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length: *(\d+)", head)
            if found and length and len(body) >= int(length.group(1)):
                break
    except ConnectionResetError:
        pass  # the answer came before the reset
    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_50mb_body_is_413_unread_and_memory_stays_flat(daemon: Daemon, chunked: bool):
    assert daemon.submit({"ExperimentName": "e" * 300}).status_code == 422  # warm the path
    before = daemon.rss()
    status, answer, sent = post_huge(daemon, HUGE_BODY, chunked=chunked)
    assert status == 413, answer
    assert answer == {"detail": f"the request body is larger than {BODY_LIMIT} bytes"}
    assert sent < HUGE_BODY  # refused while the body was still arriving
    after = daemon.rss()
    report(f"50 MB body ({'chunked' if chunked else 'declared'})", before, after, daemon.peak())
    print(f"  bytes sent before the 413: {sent / MiB:.1f} MiB")
    assert after - before < FLAT
    assert daemon.runs() == []


def test_a_10mb_experiment_name_is_422_naming_it_and_memory_stays_flat(daemon: Daemon):
    assert daemon.submit({"ExperimentName": "e" * 300}).status_code == 422  # warm the path
    before = daemon.rss()
    response = daemon.submit({"ExperimentName": "n" * HUGE_NAME})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "ExperimentName"]
    assert "at most 256 characters" in problem["msg"]
    after = daemon.rss()
    report("10 MB experiment name", before, after, daemon.peak())
    print(f"  size of the 422 answer: {len(response.content)} bytes")
    assert after - before < FLAT
    assert daemon.runs() == []


def test_a_422_does_not_echo_the_10mb_value_back(daemon: Daemon):
    response = daemon.submit({"ExperimentName": "n" * HUGE_NAME})
    assert response.status_code == 422
    assert len(response.content) < 64 * 1024


def test_a_step_printing_50mib_leaves_a_capped_log_and_memory_flat(daemon: Daemon):
    assert daemon.submit({}).status_code == 202  # warm the run path with a quiet run
    wait_until(lambda: [r for r in daemon.runs() if r.status == "completed"], timeout=30)
    before = daemon.rss()
    response = daemon.submit({"ParameterAssignments": {"lines": LOUD_LINES}})
    assert response.status_code == 202, response.text
    run_id = response.json()["Id"]

    def finished():
        with daemon.project.store() as store:
            detail = store.get_run_detail(run_id)
        return detail.run.status not in ("queued", "running") and detail

    detail = wait_until(finished, timeout=60, interval=0.1)
    assert detail.run.status == "completed"
    after = daemon.rss()
    report("step printing 50 MiB", before, after, daemon.peak())

    (attempt,) = detail.attempts
    assert attempt.log_path
    log = Path(attempt.log_path).read_bytes()
    print(f"  log kept: {len(log)} bytes of {LOUD_LINES * LINE}")
    assert len(log) <= LOG_CAP
    marker = re.search(
        rb"\[pipesched\] (\d+) bytes dropped here \(max_log_bytes: 1048576\) *\n", log
    )
    assert marker, log[:200]
    dropped, tail = int(marker.group(1)), log[marker.end() :]
    head = log[: LOUD_LINES * LINE - dropped - len(tail)]  # what was kept before the cut
    assert log[len(head) : marker.start()] in (b"", b"\n")  # the marker starts a line
    assert head.startswith(b"line 00000000\nline 00000001\n")
    assert head == b"".join(b"line %08d\n" % i for i in range(len(head) // LINE + 1))[: len(head)]
    assert tail.startswith(b"line ") and tail.endswith(b"line %08d\n" % (LOUD_LINES - 1))
    assert len(head) >= LOG_CAP // 3 and len(tail) >= LOG_CAP // 5  # both ends kept
    assert after - before < FLAT
