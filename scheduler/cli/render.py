"""How pipesched's terminal output looks: tables, time labels and the text timeline of ``show``.

Tables read like ``kubectl get``: one line per row, no cell ever wrapped, the name or id first.
On a terminal a table is fitted to the terminal's width: the least useful columns (each column
has a priority) are shortened with an ellipsis, then left out; ids and names never are. Off a
terminal the same columns are printed whole, aligned with spaces, for ``grep`` and ``awk``.
``wide`` (``-o wide``) adds the columns marked wide and never shortens or leaves out anything.

The fitting is written here rather than left to rich: rich fits a table by wrapping or folding
cells and has no way to leave out a column by priority, which is what keeps a row on one line
at 80 columns. Colour is plain ANSI (SGR) codes, only on a terminal and never with
``NO_COLOR``, so printing a table imports nothing beyond the standard library.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal, TextIO

from scheduler.core.durations import format_duration

STATUS_STYLES = {
    "completed": "green",
    "failed": "bold red",
    "canceled": "magenta",
    "running": "yellow",
    "queued": "cyan",
    "pending": "dim",
    "skipped": "dim",
    "reused": "blue",
}
DEFAULT_WIDTH = 80  # a terminal that does not say its width
GAP = 2  # spaces between columns


def is_tty(out: TextIO | None = None) -> bool:
    stream = out if out is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def color_enabled(out: TextIO | None = None) -> bool:
    """Colour only on a terminal and never with ``NO_COLOR`` (https://no-color.org)."""
    return is_tty(out) and not os.environ.get("NO_COLOR")


def terminal_width(out: TextIO | None = None) -> int:
    """Columns of the terminal ``out`` writes to: ``$COLUMNS`` when set, else what the terminal
    says, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stream = out if out is not None else sys.stdout
    try:
        size = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return DEFAULT_WIDTH
    return size if size > 0 else DEFAULT_WIDTH


_SGR = {
    "bold": "1",
    "dim": "2",
    "italic": "3",
    "underline": "4",
    "black": "30",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
    "white": "37",
}


def styled(text: str, style: str | None, color: bool) -> str:
    """``text`` in ``style`` (words such as ``bold red``) when colour is on, else as it is."""
    if not color or not style:
        return text
    codes = [_SGR[word] for word in style.split() if word in _SGR]
    if not codes:
        return text
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m"


# -- text widths ---------------------------------------------------------------------------------


def text_width(text: str) -> int:
    """Terminal cells ``text`` takes: East Asian wide characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def ellipsis_for(out: TextIO | None = None) -> str:
    """``…`` where the output encoding has it, ``~`` elsewhere (e.g. LANG=C)."""
    return "…" if _encodes(out, "…") else "~"


def arrow_for(out: TextIO | None = None) -> str:
    """``→`` where the output encoding has it, ``->`` elsewhere."""
    return "→" if _encodes(out, "→") else "->"


def shorten(
    text: str, width: int, *, where: Literal["end", "middle", "start"] = "end", mark: str = "…"
) -> str:
    """``text`` in at most ``width`` cells, cut at its end, its middle or its start (which keeps
    a path's last folders and file name), marked with ``mark``."""
    if text_width(text) <= width:
        return text
    if width <= text_width(mark):
        return _take(text, width)
    room = width - text_width(mark)
    if where == "start":
        return mark + _take(text[::-1], room)[::-1]
    if where == "middle":
        head = _take(text, (room + 1) // 2)
        tail = _take(text[::-1], room // 2)[::-1]
        return head + mark + tail
    return _take(text, room) + mark


def _take(text: str, width: int) -> str:
    """The longest start of ``text`` that fits in ``width`` cells."""
    used = 0
    for index, char in enumerate(text):
        used += _char_width(char)
        if used > width:
            return text[:index]
    return text


# -- tables --------------------------------------------------------------------------------------

Shrink = Literal["end", "middle", "start"]


@dataclass(frozen=True)
class Column:
    """A table column and how it gives way on a narrow terminal.

    ``priority``: 0 is never left out; among the others the highest number goes first (None:
    the column's position, so the last columns go first). ``shrink``: the column is shortened
    (at its ``end``; at its ``start`` for paths, keeping the file name) down to ``min_width``
    cells before any column is left out. ``wide``: shown only with ``-o wide``. ``styles``:
    cell text (or its first word) to a style, e.g. statuses."""

    header: str
    priority: int | None = None
    shrink: Shrink | None = None
    min_width: int = 12
    wide: bool = False
    styles: Mapping[str, str] | None = None


def print_table(
    headers: Sequence[str | Column],
    rows: Sequence[Sequence[Any]],
    *,
    no_headers: bool = False,
    out: TextIO | None = None,
    tty: bool | None = None,
    styles: Mapping[int, Mapping[str, str]] | None = None,
    no_wrap: Sequence[int] = (0,),
    priorities: Sequence[int] | None = None,
    shrink: Mapping[int, Shrink] | None = None,
    wide: bool = False,
    width: int | None = None,
    indent: int = 0,
) -> None:
    """Print a table, one line per row: fitted to the terminal's width on a terminal, whole
    and plain elsewhere.

    ``headers`` are names or :class:`Column` specs; with names, ``priorities`` and ``shrink``
    (column index to ``end``/``middle``/``start``) say how columns give way, and by default
    the first column stays and the last go first. Columns in ``no_wrap`` (ids) are never
    shortened or left out. ``styles`` maps a column index to {cell text: style}. ``wide`` shows
    every column whole; ``width`` overrides the terminal's; ``indent`` puts spaces before each
    line."""
    out = out if out is not None else sys.stdout
    on_tty = tty if tty is not None else is_tty(out)
    columns = _columns(headers, priorities or (), shrink or {}, styles or {}, no_wrap)
    shown = [index for index, column in enumerate(columns) if wide or not column.wide]
    specs = [columns[index] for index in shown]
    cells = [[_cell(row[index]) for index in shown] for row in rows]
    if on_tty and not wide:
        room = (width if width is not None else terminal_width(out)) - indent
        visible, widths = fit_columns(specs, cells, room, no_headers=no_headers)
        mark = ellipsis_for(out)
        specs = [specs[i] for i in visible]
        cells = [
            [
                shorten(row[i], w, where=specs[n].shrink or "end", mark=mark)
                for n, (i, w) in enumerate(zip(visible, widths, strict=True))
            ]
            for row in cells
        ]
    color = on_tty and color_enabled(out)
    for line in table_lines(specs, cells, no_headers=no_headers, color=color):
        out.write(" " * indent + line + "\n")
    out.flush()


def _columns(
    headers: Sequence[str | Column],
    priorities: Sequence[int],
    shrink: Mapping[int, Shrink],
    styles: Mapping[int, Mapping[str, str]],
    no_wrap: Sequence[int],
) -> list[Column]:
    columns = []
    for index, header in enumerate(headers):
        column = header if isinstance(header, Column) else Column(str(header))
        priority = column.priority
        if priority is None:
            priority = priorities[index] if index < len(priorities) else index
        if index in no_wrap and column.priority is None:
            priority = 0
        columns.append(
            replace(
                column,
                priority=priority,
                shrink=column.shrink or (None if index in no_wrap else shrink.get(index)),
                styles=column.styles or styles.get(index),
            )
        )
    return columns


def fit_columns(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    no_headers: bool = False,
) -> tuple[list[int], list[int]]:
    """Which columns to show, and how wide, for the table to fit in ``width`` cells.

    Columns that may shrink count at their minimum while deciding what to leave out; columns
    are left out, highest priority number first (the rightmost among equals), until the rest
    fit; then the shrinking ones give up cells, least useful first, only as many as needed.
    A table whose kept columns alone are wider than ``width`` is shown whole."""
    natural = [
        max([0 if no_headers else text_width(c.header)] + [text_width(row[i]) for row in rows])
        for i, c in enumerate(columns)
    ]
    floor = [
        min(natural[i], max(c.min_width, 0 if no_headers else text_width(c.header)))
        if c.shrink
        else natural[i]
        for i, c in enumerate(columns)
    ]

    def total(indices: list[int], sizes: list[int]) -> int:
        return sum(sizes[i] for i in indices) + GAP * max(len(indices) - 1, 0)

    visible = list(range(len(columns)))
    by_least_use = sorted(visible, key=lambda i: (columns[i].priority or 0, i), reverse=True)
    for index in by_least_use:
        if total(visible, floor) <= width or not columns[index].priority:
            break
        visible.remove(index)
    sizes = list(natural)
    excess = total(visible, sizes) - width
    for index in by_least_use:
        if excess <= 0:
            break
        if index in visible and columns[index].shrink:
            given = min(excess, natural[index] - floor[index])
            sizes[index] -= given
            excess -= given
    return visible, [sizes[i] for i in visible]


def table_lines(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], *, no_headers: bool, color: bool
) -> list[str]:
    """Lines of a table aligned with two spaces, no trailing blanks; cells as given."""
    table = [list(row) for row in rows]
    if not no_headers:
        table.insert(0, [c.header for c in columns])
    if not table or not columns:
        return []
    widths = [max(text_width(row[i]) for row in table) for i in range(len(columns))]
    lines = []
    for number, row in enumerate(table):
        header = number == 0 and not no_headers
        parts = []
        for cell, column, size in zip(row, columns, widths, strict=True):
            style = "bold" if header else _style(column.styles, cell)
            parts.append(styled(cell, style, color) + " " * (size - text_width(cell)))
        lines.append((" " * GAP).join(parts).rstrip())
    return lines


def plain_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, no_headers: bool = False
) -> list[str]:
    """Lines of a table aligned with two spaces, no trailing blanks, nothing cut."""
    columns = [Column(str(h)) for h in headers]
    cells = [[_cell(value) for value in row] for row in rows]
    return table_lines(columns, cells, no_headers=no_headers, color=False)


def _style(styles: Mapping[str, str] | None, cell: str) -> str:
    """A cell's style by its text or its first word (``failed (timeout)`` is styled as failed)."""
    if not styles:
        return ""
    return styles.get(cell) or styles.get(cell.split(" ", 1)[0], "")


def console(out: TextIO | None = None) -> Any:
    """A rich console on ``out`` that follows our colour rule (for output that wants rich;
    tables and ``show`` do not)."""
    from rich.console import Console

    out = out if out is not None else sys.stdout
    return Console(file=out, no_color=not color_enabled(out), highlight=False, soft_wrap=False)


def _cell(value: Any) -> str:
    """A value as one cell: ``-`` for none, line breaks and tabs as spaces (one line per row)."""
    if value is None:
        return "-"
    return re.sub(r"[\r\n\t]", " ", str(value))


# -- time labels ---------------------------------------------------------------------------------

_SPAN_UNITS = (("y", 365 * 86400), ("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def format_span(seconds: float) -> str:
    """A span in its two largest units, as ``systemctl list-timers`` writes it: ``4h 43min``,
    ``2d 3h``, ``45s``; ``0s`` under a second."""
    remaining = int(abs(seconds))
    parts: list[str] = []
    for unit, size in _SPAN_UNITS:
        count, remaining = divmod(remaining, size)
        if count or parts:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    parts = [p for p in parts if not p.startswith("0")] or ["0s"]
    return " ".join(parts)


def short_span(seconds: float) -> str:
    """A span as ``kubectl get`` writes an age, at most six characters: ``45s``, ``5m30s``,
    ``47m``, ``3h5m``, ``27h``, ``3d4h``, ``45d``, ``2y10d``."""
    whole = int(abs(seconds))
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return _two(minutes, "m", whole % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        return _two(days, "d", hours % 24, "h")
    if days < 2 * 365:
        return f"{days}d"
    if days < 8 * 365:
        return _two(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _two(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def format_when(moment: datetime | None, now: datetime) -> str:
    """A moment relative to ``now``, short: ``5m ago``, ``in 3h``, ``now`` (under a second),
    ``-`` for never."""
    if moment is None:
        return "-"
    delta = (_aware(now) - _aware(moment)).total_seconds()
    if abs(delta) < 1:
        return "now"
    span = short_span(delta)
    return f"{span} ago" if delta > 0 else f"in {span}"


def format_relative(moment: datetime | None, now: datetime) -> str:
    """``19h ago``, ``in 4h 43min``, ``now`` (under a second), ``-`` for never."""
    if moment is None:
        return "-"
    delta = (_aware(now) - _aware(moment)).total_seconds()
    if abs(delta) < 1:
        return "now"
    span = format_span(delta)
    return f"{span} ago" if delta > 0 else f"in {span}"


def format_absolute(moment: datetime | None, zone: tzinfo | None = None) -> str:
    """With weekday and zone, to the second: ``Wed 2026-11-25 14:02:14 CET``, in ``zone``
    (default: local time); ``-`` for never."""
    if moment is None:
        return "-"
    return _aware(moment).astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z")


def format_moment(moment: datetime | None, now: datetime, zone: tzinfo | None = None) -> str:
    """Absolute and relative: ``Wed 2026-11-25 14:02:14 CET (19h ago)``; ``-`` for never."""
    if moment is None:
        return "-"
    return f"{format_absolute(moment, zone)} ({format_when(moment, now)})"


def time_cell(
    moment: datetime | None, now: datetime, *, wide: bool, zone: tzinfo | None = None
) -> str:
    """A table's time: relative (``5m ago``) by default, absolute and relative with wide."""
    return format_moment(moment, now, zone) if wide else format_when(moment, now)


def run_duration(
    started: datetime | None, finished: datetime | None, now: datetime
) -> float | None:
    """Seconds from start to finish (to ``now`` while running); None when it never started."""
    if started is None:
        return None
    return max(
        0.0, ((_aware(finished) if finished else _aware(now)) - _aware(started)).total_seconds()
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- timeline ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One row of a timeline: a step's label, its span (None when it never ran) and status."""

    label: str
    start: datetime | None
    end: datetime | None
    status: str


MIN_TRACK = 10  # cells a timeline's bars get however narrow the terminal


def timeline(
    bars: Sequence[Bar],
    *,
    now: datetime,
    width: int = 40,
    color: bool = False,
    fill: str = "█",
    max_width: int | None = None,
    mark: str = "…",
) -> list[str]:
    """The text timeline of a run, whole-run duration on top, one row per step.

    A bar's offset and length are proportional to the step's start and duration within the
    run, with a minimum of one cell so a 4 ms step stays visible beside a 28 s one. ``width``
    is the track's width; with ``max_width`` the track narrows (to 10 cells at least), then
    long labels are shortened, so that every line fits in ``max_width`` cells."""
    spans = [(b.start, b.end or now) for b in bars if b.start is not None]
    if not spans:
        return ["(no step has started)"]
    first = min(_aware(s) for s, _ in spans)
    last = max(_aware(e) for _, e in spans)
    total = max((last - first).total_seconds(), 0.0)
    suffixes = [_bar_suffix(bar, now) for bar in bars]
    label_width = max(len("run"), *(text_width(b.label) for b in bars))
    if max_width is not None:
        room = max_width - 2 * GAP - max(text_width(s) for s in suffixes)
        width = max(MIN_TRACK, min(width, room - label_width))
        label_width = max(len("run"), min(label_width, room - width))
    lines = [styled(f"{'run'.ljust(label_width)}  {format_duration(total)}", "bold", color)]
    for bar, suffix in zip(bars, suffixes, strict=True):
        text = shorten(bar.label, label_width, mark=mark)
        label = text + " " * (label_width - text_width(text))
        if bar.start is None:
            lines.append(
                f"{label}  {' ' * width}  {styled(bar.status, STATUS_STYLES.get(bar.status), color)}"
            )
            continue
        start, end = _aware(bar.start), _aware(bar.end or now)
        offset, length = bar_cells(
            (start - first).total_seconds(), (end - start).total_seconds(), total, width
        )
        cells = fill * length
        track = (
            " " * offset
            + styled(cells, STATUS_STYLES.get(bar.status), color)
            + " " * (width - offset - length)
        )
        lines.append(f"{label}  {track}  {suffix}")
    return [line.rstrip() for line in lines]


def _bar_suffix(bar: Bar, now: datetime) -> str:
    """What follows a bar: its duration, ``(running)`` while it runs; the status when it never
    started."""
    if bar.start is None:
        return bar.status
    duration = format_duration((_aware(bar.end or now) - _aware(bar.start)).total_seconds())
    return duration if bar.end is not None else f"{duration} (running)"


def bar_cells(offset_s: float, duration_s: float, total_s: float, width: int) -> tuple[int, int]:
    """(offset, length) in cells of a bar on a track ``width`` cells wide; length is at least 1
    and the bar never runs past the track."""
    if total_s <= 0:  # every step took no measurable time
        return 0, 1
    offset = min(int(offset_s / total_s * width), width - 1)
    length = max(1, round(duration_s / total_s * width))
    return offset, min(length, width - offset)


def bar_fill(out: TextIO | None = None) -> str:
    """A full block where the output encoding has one, ``#`` elsewhere (e.g. LANG=C)."""
    return "█" if _encodes(out, "█") else "#"


def _encodes(out: TextIO | None, char: str) -> bool:
    stream = out if out is not None else sys.stdout
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        char.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


# -- label/value pages ----------------------------------------------------------------------------


def fold(text: str, width: int) -> list[str]:
    """``text`` on lines of at most ``width`` cells (20 at least): a long value on a ``show``
    page stays readable without the terminal's wrapping. Lines break at spaces, or after a
    ``/`` in a long path, and mid-word only in a word longer than a line."""
    width = max(width, 20)
    lines: list[str] = []
    line = ""
    for piece in re.findall(r"\s+|[^\s/]*/|[^\s/]+", text):
        if not line and piece.isspace():
            continue
        if text_width(line + piece) <= width:
            line += piece
            continue
        if line.strip():
            lines.append(line.rstrip())
        line = "" if piece.isspace() else piece
        while text_width(line) > width:
            head = _take(line, width)
            lines.append(head)
            line = line[len(head) :]
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


def field_lines(
    fields: Sequence[tuple[str, str]],
    *,
    width: int | None = None,
    color: bool = False,
    lead_styles: Mapping[str, tuple[str, str | None]] | None = None,
) -> list[str]:
    """``Label  value`` lines, the values in one column, labels bold when ``color``. With
    ``width``, a long value folds onto lines of its own under the values' column.
    ``lead_styles`` maps a label to (the start of its value, the style of that start), e.g. a
    run's status word."""
    label_width = max((len(label) for label, _ in fields), default=0) + 2
    lines = []
    for label, value in fields:
        parts = fold(value, width - label_width) if width is not None else [value]
        lead, style = (lead_styles or {}).get(label, ("", None))
        if lead and parts[0].startswith(lead):
            parts[0] = styled(lead, style, color) + parts[0][len(lead) :]
        lines.append(styled(label.ljust(label_width), "bold", color) + parts[0])
        lines += [" " * label_width + part for part in parts[1:]]
    return lines


# -- plain output --------------------------------------------------------------------------------


def print_json(data: Any, out: TextIO | None = None) -> None:
    """The ``--json`` document: indented, one per command, nothing else on stdout."""
    import json

    out = out if out is not None else sys.stdout
    out.write(json.dumps(data, indent=2) + "\n")
    out.flush()


def print_lines(lines: Sequence[str], *, color: bool = False, out: TextIO | None = None) -> None:
    """Lines as they are (those built with :func:`styled` carry their colour already; ``color``
    is kept for callers that pass it)."""
    del color
    out = out if out is not None else sys.stdout
    for line in lines:
        out.write(line + "\n")
    out.flush()
