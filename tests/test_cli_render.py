"""Terminal rendering: tables fitted to a terminal's width and plain off it, time labels, the
text timeline, folded values."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.cli.render import (
    Bar,
    Column,
    bar_cells,
    color_enabled,
    fit_columns,
    fold,
    format_relative,
    format_span,
    format_when,
    print_table,
    short_span,
    shorten,
    text_width,
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


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (0.4, "0s"),
        (90, "90s"),
        (330, "5m30s"),
        (300, "5m"),
        (2820, "47m"),
        (11100, "3h5m"),
        (10800, "3h"),
        (97200, "27h"),
        (273600, "3d4h"),
        (172800, "2d"),
        (45 * 86400, "45d"),
        (740 * 86400, "2y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_short_span_is_kubectls_age(seconds: float, label: str) -> None:
    assert short_span(seconds) == label
    assert len(label) <= 6


def test_when_is_short_ago_or_in() -> None:
    assert format_when(T0 - timedelta(minutes=5), T0) == "5m ago"
    assert format_when(T0 + timedelta(hours=3), T0) == "in 3h"
    assert format_when(T0 + timedelta(milliseconds=300), T0) == "now"
    assert format_when(None, T0) == "-"


# -- fitting a table to a terminal ---------------------------------------------------------------

ROWS = [[LONG_ID, "diabetes-training", "failed", "schedule:weekly", "step train failed: exit 3"]]
COLUMNS = [
    Column("ID", priority=0),
    Column("PIPELINE", priority=0),
    Column("STATUS", priority=1),
    Column("TRIGGER", priority=3),
    Column("REASON", priority=2, shrink="end", min_width=10),
]


@pytest.fixture
def no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")


def test_columns_that_fit_are_shown_whole() -> None:
    assert fit_columns(COLUMNS, ROWS, 200) == ([0, 1, 2, 3, 4], [len(LONG_ID), 17, 6, 15, 25])


def test_a_shrinking_column_gives_cells_before_any_column_is_left_out() -> None:
    width = len(LONG_ID) + 17 + 6 + 15 + 12 + 4 * 2  # the reason has 12 cells left
    assert fit_columns(COLUMNS, ROWS, width) == ([0, 1, 2, 3, 4], [len(LONG_ID), 17, 6, 15, 12])


def test_the_highest_priority_number_is_left_out_first() -> None:
    width = len(LONG_ID) + 17 + 6 + 10 + 3 * 2  # no room for the trigger beside the reason
    assert fit_columns(COLUMNS, ROWS, width) == ([0, 1, 2, 4], [len(LONG_ID), 17, 6, 10])


def test_columns_of_priority_0_stay_even_when_they_overflow() -> None:
    assert fit_columns(COLUMNS, ROWS, 30)[0] == [0, 1]


@pytest.mark.usefixtures("no_color")
def test_a_table_on_a_terminal_fits_its_width_one_line_per_row() -> None:
    out = Tty()
    rows = [*ROWS, ["r2", "p", "completed", "manual", "-"]]
    print_table(COLUMNS, rows, out=out, width=100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert all(text_width(line) <= 100 for line in lines)
    assert lines[0].split() == ["ID", "PIPELINE", "STATUS", "REASON"]
    assert lines[1].startswith(LONG_ID) and lines[1].endswith("~")  # "…" where it encodes


@pytest.mark.usefixtures("no_color")
def test_plain_headers_keep_the_first_column_and_leave_out_the_last_first() -> None:
    out = Tty()
    print_table(["ID", "A", "B"], [[LONG_ID, "a" * 20, "b" * 20]], out=out, width=75)
    assert out.getvalue().splitlines()[0].split() == ["ID", "A"]
    out = Tty()
    print_table(["ID", "A"], [[LONG_ID, "a" * 40]], out=out, width=60)
    assert out.getvalue().splitlines()[1] == LONG_ID  # the first column stays, alone


def test_off_a_terminal_nothing_is_shortened_or_left_out() -> None:
    out = io.StringIO()
    print_table(COLUMNS, ROWS, out=out, width=40)
    header, row = out.getvalue().splitlines()
    assert header.split() == ["ID", "PIPELINE", "STATUS", "TRIGGER", "REASON"]
    assert row.startswith(LONG_ID) and row.endswith("step train failed: exit 3")


@pytest.mark.usefixtures("no_color")
def test_wide_columns_only_with_wide_and_then_nothing_is_cut() -> None:
    columns = [Column("NAME", priority=0), Column("PATH", wide=True)]
    out = Tty()
    print_table(columns, [["a", "/x" * 60]], out=out, width=40)
    assert out.getvalue() == "NAME\na\n"
    out = Tty()
    print_table(columns, [["a", "/x" * 60]], out=out, width=40, wide=True)
    assert out.getvalue().splitlines()[1] == "a     " + "/x" * 60


@pytest.mark.parametrize(
    ("where", "expected"),
    [("end", "/data/runs/…"), ("start", "…n/model.pkl"), ("middle", "/data/…l.pkl")],
)
def test_shorten_marks_where_it_cut(where: str, expected: str) -> None:
    text = "/data/runs/01kaxq4m7b3fz/train/model.pkl"
    assert shorten(text, 12, where=where) == expected  # type: ignore[arg-type]
    assert shorten(text, 100, where=where) == text  # type: ignore[arg-type]


def test_wide_characters_take_two_cells() -> None:
    assert text_width("模型") == 4
    assert text_width(shorten("模型模型模型", 7)) <= 7


def test_fold_breaks_at_spaces_and_after_slashes_in_long_paths() -> None:
    path = "/srv/pipesched/var/datastore/.pipesched/models/diabetes-risk-classifier/1"
    assert fold(path, 50) == [
        "/srv/pipesched/var/datastore/.pipesched/models/",
        "diabetes-risk-classifier/1",
    ]
    assert fold("a=1, b=2, c=3", 20) == ["a=1, b=2, c=3"]
    assert all(len(line) <= 20 for line in fold("word " * 30, 20))


def test_timeline_fits_a_narrow_terminal_by_narrowing_its_track_then_its_labels() -> None:
    bars = [
        Bar("x" * 70, T0, T0 + timedelta(seconds=5), "completed"),
        Bar("short", T0 + timedelta(seconds=5), T0 + timedelta(seconds=9), "completed"),
    ]
    lines = timeline(bars, now=T0 + timedelta(minutes=1), width=60, fill="#", max_width=80)
    assert all(len(line) <= 80 for line in lines)
    assert lines[1].startswith("x" * 20) and "…" in lines[1]
    assert lines[2].startswith("short ")
