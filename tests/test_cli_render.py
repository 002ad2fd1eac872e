"""Terminal rendering: plain tables off a terminal, time labels, the text timeline."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.cli.render import (
    Bar,
    bar_cells,
    color_enabled,
    format_relative,
    format_span,
    print_table,
    timeline,
)

T0 = datetime(2026, 11, 25, 13, 2, 14, tzinfo=UTC)
LONG_ID = "20261125-130214-0123456789abcdef0123456789abcdef"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_table_off_a_terminal_is_plain_aligned_columns_without_truncation() -> None:
    out = io.StringIO()
    rows = [[LONG_ID, "diabetes-training", "completed"], ["r2", "p", None]]
    print_table(["ID", "PIPELINE", "STATUS"], rows, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["ID", "PIPELINE", "STATUS"]
    assert lines[1].split() == [LONG_ID, "diabetes-training", "completed"]
    assert lines[2].split() == ["r2", "p", "-"]
    assert len({line.index(line.split()[1]) for line in lines}) == 1  # columns aligned
    assert "\x1b[" not in out.getvalue()
    assert all(line == line.rstrip() for line in lines)


def test_no_headers_leaves_out_the_header_row() -> None:
    out = io.StringIO()
    print_table(["ID", "STATUS"], [["r1", "failed"]], no_headers=True, out=out)
    assert out.getvalue() == "r1  failed\n"


def test_table_on_a_terminal_keeps_long_ids_whole() -> None:
    out = Tty()
    print_table(["ID", "STATUS"], [[LONG_ID, "completed"]], out=out)
    assert LONG_ID in out.getvalue()


def test_statuses_are_coloured_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    print_table(["STATUS"], [["failed"]], out=(out := Tty()), styles={0: {"failed": "red"}})
    assert "\x1b[31mfailed" in out.getvalue()


def test_no_color_turns_colour_off_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", "1")
    assert not color_enabled(Tty())
    print_table(["STATUS"], [["failed"]], out=(out := Tty()), styles={0: {"failed": "red"}})
    assert "\x1b[31m" not in out.getvalue()
    assert "failed" in out.getvalue()


def test_colour_never_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert not color_enabled(io.StringIO())


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(0.4, "0s"), (45, "45s"), (16980, "4h 43min"), (68400, "19h"), (93784, "1d 2h"), (3601, "1h")],
)
def test_span_shows_its_two_largest_units(seconds: float, label: str) -> None:
    assert format_span(seconds) == label


def test_relative_time_says_ago_in_or_dash() -> None:
    assert format_relative(T0 - timedelta(hours=19), T0) == "19h ago"
    assert format_relative(T0 + timedelta(minutes=283), T0) == "in 4h 43min"
    assert format_relative(None, T0) == "-"


def test_timeline_keeps_a_4ms_step_visible_beside_a_28s_one() -> None:
    bars = [
        Bar("prep", T0, T0 + timedelta(milliseconds=4), "completed"),
        Bar("train", T0 + timedelta(milliseconds=4), T0 + timedelta(seconds=28), "completed"),
    ]
    lines = timeline(bars, now=T0 + timedelta(minutes=1), width=40, fill="#")
    assert lines[0].split() == ["run", "28.0s"]
    assert lines[1].count("#") == 1
    assert lines[1].endswith("4ms")
    assert lines[2].count("#") == 40
    assert lines[2].endswith("28.0s")


def test_timeline_offsets_bars_by_their_start_within_the_run() -> None:
    bars = [
        Bar("a", T0, T0 + timedelta(seconds=10), "completed"),
        Bar("b", T0 + timedelta(seconds=10), T0 + timedelta(seconds=20), "failed"),
        Bar("c", None, None, "skipped"),
    ]
    lines = timeline(bars, now=T0 + timedelta(seconds=30), width=20, fill="#")
    track_start = len("run  ")
    assert lines[1][track_start:].startswith("#" * 10 + " " * 10)
    assert lines[2][track_start:].startswith(" " * 10 + "#" * 10)
    assert lines[3].split() == ["c", "skipped"]


def test_running_step_bar_runs_to_now() -> None:
    bars = [Bar("a", T0, None, "running")]
    lines = timeline(bars, now=T0 + timedelta(seconds=5), width=10, fill="#")
    assert lines[1].endswith("5.0s (running)")


def test_bar_never_runs_past_the_track() -> None:
    assert bar_cells(offset_s=28.0, duration_s=0.004, total_s=28.0, width=40) == (39, 1)
