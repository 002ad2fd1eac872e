"""Log lines as journald receives them: a real subprocess whose stderr is the 'journal' stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from scheduler.core.logging import stream_is_journal

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import logging, structlog
from scheduler.core.logging import configure_logging
configure_logging({level!r}, {fmt!r})
log = structlog.get_logger("t")
{body}
"""

EVERY_LEVEL = """
log.debug("debugged"); log.info("informed"); log.warning("warned"); log.error("erred")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("crashed", run_id="r1")
"""


def run(body: str, *, fmt: str = "json", level: str = "debug", journal: str = "same") -> list[str]:
    """stderr lines of a process logging ``body``; ``journal``: same | other | unset, i.e.
    JOURNAL_STREAM names its stderr, names another stream, or is not set."""
    read_end, write_end = os.pipe()
    decoy_read, decoy_write = os.pipe()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("JOURNAL_STREAM", None)
    if journal != "unset":
        st = os.fstat(write_end if journal == "same" else decoy_write)
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    code = SCRIPT.format(level=level, fmt=fmt, body=textwrap.dedent(body))
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=write_end, env=env)
    os.close(write_end)
    with os.fdopen(read_end) as stream:
        out = stream.read()
    for fd in (decoy_read, decoy_write):
        os.close(fd)
    assert proc.wait(30) == 0, out
    return out.splitlines()


def split_priority(line: str) -> tuple[int, str]:
    assert line.startswith("<") and line[2] == ">", line
    return int(line[1]), line[3:]


def test_json_lines_carry_their_syslog_priority() -> None:
    lines = run(EVERY_LEVEL)
    parsed = [split_priority(line) for line in lines]
    events = [(priority, json.loads(rest)["event"]) for priority, rest in parsed]
    assert events == [(7, "debugged"), (6, "informed"), (4, "warned"), (3, "erred"), (3, "crashed")]


def test_json_traceback_stays_on_one_line() -> None:
    lines = run(EVERY_LEVEL)
    assert len(lines) == 5
    priority, rest = split_priority(lines[-1])
    record = json.loads(rest)
    assert priority == 3
    assert record["run_id"] == "r1"
    assert "ZeroDivisionError" in record["exception"]


def test_console_traceback_lines_each_carry_the_priority() -> None:
    lines = run(EVERY_LEVEL, fmt="console")
    crashed = next(i for i, line in enumerate(lines) if "crashed" in line)
    tail = lines[crashed:]
    assert any("ZeroDivisionError" in line for line in tail)
    assert all(line.startswith("<3>") for line in tail), tail


def test_no_prefix_when_the_journal_stream_is_another_one() -> None:
    """A process that inherited JOURNAL_STREAM but writes elsewhere (e.g. a step's log file)."""
    lines = run(EVERY_LEVEL, journal="other")
    assert [json.loads(line)["event"] for line in lines][:2] == ["debugged", "informed"]


def test_no_prefix_outside_systemd() -> None:
    lines = run(EVERY_LEVEL, fmt="auto", journal="unset")
    assert json.loads(lines[0])["event"] == "debugged"  # auto: JSON when stderr is no terminal


def test_level_threshold_drops_lower_levels() -> None:
    lines = run(EVERY_LEVEL, level="warning")
    assert [json.loads(split_priority(line)[1])["event"] for line in lines] == [
        "warned",
        "erred",
        "crashed",
    ]


def test_standard_logging_records_share_the_format() -> None:
    lines = run('logging.getLogger("uvicorn.error").warning("port %d busy", 8790)')
    priority, rest = split_priority(lines[0])
    record = json.loads(rest)
    assert priority == 4
    assert (record["event"], record["logger"]) == ("port 8790 busy", "uvicorn.error")


def test_apscheduler_info_chatter_is_left_out() -> None:
    lines = run(
        """
        logging.getLogger("apscheduler.executors.default").info("Running job")
        logging.getLogger("apscheduler.scheduler").warning("missed")
        """,
        level="info",
    )
    assert [json.loads(split_priority(line)[1])["event"] for line in lines] == ["missed"]


def test_python_warnings_are_logged_as_warnings() -> None:
    lines = run('import warnings; warnings.warn("deprecated thing")')
    priority, rest = split_priority(lines[0])
    assert priority == 4
    assert "deprecated thing" in json.loads(rest)["event"]


def test_stream_is_journal_compares_device_and_inode(tmp_path: Path) -> None:
    with open(tmp_path / "out", "w") as stream:
        st = os.fstat(stream.fileno())
        assert stream_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not stream_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not stream_is_journal(stream, {"JOURNAL_STREAM": "garbage"})
        assert not stream_is_journal(stream, {})


def test_a_lazy_logger_in_an_unconfigured_process_warns_on_stderr_and_configures_nothing() -> None:
    probe = textwrap.dedent(
        """
        import structlog
        from scheduler.core.lazylog import lazy_logger
        log = lazy_logger("probe")
        log.info("quiet_line")
        log.warning("loud_line", reason="disk")
        print("configured:", structlog.is_configured())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "configured: False\n"
    (line,) = done.stderr.splitlines()
    assert json.loads(line) | {"timestamp": None} == {
        "event": "loud_line",
        "reason": "disk",
        "level": "warning",
        "timestamp": None,
    }
