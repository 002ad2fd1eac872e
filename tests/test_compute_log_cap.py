"""Step logs capped at ``max_log_bytes`` per attempt: a step printing megabytes under a 64 KiB cap
leaves a log that holds the head, a marker line with the exact number of bytes dropped, and the
tail; the order of stdout and stderr is kept; the setting is read from the config with errors
that name file, line and field. Real ``pipesched run`` processes and real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors
from tests.projects import make_project

CAP = 64 * 1024
LINES = 400_000  # "line 0000000\n" .. : 13 bytes each, 5.2 MB in all

LOUD = """
import sys
for i in range(int(sys.argv[1])):
    (sys.stderr if i % 2 else sys.stdout).write(f"line {i:07d}\\n")
"""


def loud_run(tmp_path: Path, lines: int, cap: str | None) -> bytes:
    settings = {"max_log_bytes": cap} if cap is not None else {}
    project = make_project(tmp_path, **settings)
    project.pipeline(
        "loud",
        f"""
        steps:
          s: {{type: python_script, script: loud.py, arguments: ["{lines}"], allow_reuse: false}}
        """,
        {"loud.py": LOUD},
    )
    # unbuffered, so stdout and stderr lines interleave in the order written
    result = project.cli("run", "loud", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "completed"
    with project.store() as store:
        (run,) = store.list_runs(limit=0)
        (attempt,) = store.get_run_detail(run.id).attempts
    assert attempt.log_path
    return Path(attempt.log_path).read_bytes()


def expected_lines(count: int) -> bytes:
    return b"".join(f"line {i:07d}\n".encode() for i in range(count))


def test_a_step_printing_megabytes_keeps_head_marker_and_tail(tmp_path: Path):
    log = loud_run(tmp_path, LINES, "64KiB")
    everything = expected_lines(LINES)
    assert len(everything) > 5_000_000
    assert len(log) <= CAP

    match = re.search(rb"\[pipesched\] (\d+) bytes dropped here \(max_log_bytes: 65536\) *\n", log)
    assert match, log[:200]
    dropped, tail = int(match.group(1)), log[match.end() :]
    # The tail is the output's end, from a line's start; the head its beginning; the marker
    # (on a line of its own: after a newline of its own when the cut fell inside a line)
    # counts exactly the bytes missing between them.
    assert tail.startswith(b"line ") and everything.endswith(tail)
    head = log[: len(everything) - dropped - len(tail)]
    assert everything.startswith(head)
    assert log[len(head) : match.start()] in (b"", b"\n")
    assert head.endswith(b"\n") == (match.start() == len(head))
    assert len(head) >= CAP // 3 and len(tail) >= CAP // 5  # both ends get a real share


def test_output_under_the_cap_is_whole_and_keeps_the_order_of_stdout_and_stderr(tmp_path: Path):
    log = loud_run(tmp_path, 4000, "64KiB")  # 52 000 bytes
    assert log == expected_lines(4000)


def test_the_default_cap_leaves_ordinary_logs_alone(tmp_path: Path):
    log = loud_run(tmp_path, 20_000, None)
    assert log == expected_lines(20_000)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("lots", "must be a size in bytes (got 'lots')"),
        ("1.5MiB", "must be a size in bytes"),
        ("100", "greater than or equal to 4096"),
    ],
)
def test_a_bad_max_log_bytes_names_file_line_and_field(tmp_path: Path, value: str, needle: str):
    project = make_project(tmp_path)
    text = project.config_path.read_text() + f"max_log_bytes: {value!r}\n"
    project.config_path.write_text(text)
    line = len(text.splitlines())
    with pytest.raises(DefinitionErrors) as caught:
        project.config()
    message = str(caught.value)
    assert f"pipesched.yaml:{line}:" in message
    assert "max_log_bytes" in message and needle in message


def test_max_log_bytes_reads_units(tmp_path: Path):
    project = make_project(tmp_path, max_log_bytes="64KiB")
    assert project.config().max_log_bytes == CAP
    assert make_project(tmp_path / "b").config().max_log_bytes == 256 * 1024**2
