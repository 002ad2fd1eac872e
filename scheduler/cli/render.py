"""How pipesched's terminal output looks: tables, time labels and the text timeline of ``show``.

On a terminal, tables go through rich (colour unless ``NO_COLOR`` is set). Off a terminal they
are plain columns aligned with spaces, because rich squeezes tables to 80 columns and
ellipsizes cells when piped, which breaks ``grep``/``awk`` and never-truncated run ids.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

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


def is_tty(out: TextIO | None = None) -> bool:
    stream = out if out is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def color_enabled(out: TextIO | None = None) -> bool:
    """Colour only on a terminal and never with ``NO_COLOR`` (https://no-color.org)."""
    return is_tty(out) and not os.environ.get("NO_COLOR")


def styled(text: str, style: str | None, color: bool) -> str:
    """``text`` wrapped in rich markup when colour is on (the caller prints through rich)."""
    if not color:
        return text
    from rich.markup import escape  # only on a terminal: piped output never loads rich

    if not style:
        return escape(text)
    return f"[{style}]{escape(text)}[/]"


# -- tables --------------------------------------------------------------------------------------


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    no_headers: bool = False,
    out: TextIO | None = None,
    tty: bool | None = None,
    styles: dict[int, dict[str, str]] | None = None,
    no_wrap: Sequence[int] = (0,),
) -> None:
    """Print a table: rich on a terminal, plain aligned columns elsewhere.

    ``styles`` maps a column index to {cell text: rich style} (e.g. statuses); columns in
    ``no_wrap`` (ids) are never wrapped or cut."""
    out = out if out is not None else sys.stdout
    cells = [[_cell(value) for value in row] for row in rows]
    if tty if tty is not None else is_tty(out):
        _print_rich_table(headers, cells, no_headers, out, styles or {}, no_wrap)
    else:
        for line in plain_table(headers, cells, no_headers=no_headers):
            out.write(line + "\n")
        out.flush()


def plain_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, no_headers: bool = False
) -> list[str]:
    """Lines of a table aligned with two spaces, no trailing blanks, nothing cut."""
    table = [[_cell(value) for value in row] for row in rows]
    if not no_headers:
        table.insert(0, [str(h) for h in headers])
    if not table:
        return []
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]


def _print_rich_table(
    headers: Sequence[str],
    rows: list[list[str]],
    no_headers: bool,
    out: TextIO,
    styles: dict[int, dict[str, str]],
    no_wrap: Sequence[int],
) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=None, show_header=not no_headers, header_style="bold", pad_edge=False, expand=False
    )
    for index, header in enumerate(headers):
        if index in no_wrap:
            longest = max([len(r[index]) for r in rows] + [len(header)])
            table.add_column(header, no_wrap=True, min_width=longest, overflow="fold")
        else:
            table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(
            *(Text(cell, style=_style(styles.get(i), cell)) for i, cell in enumerate(row))
        )
    console(out).print(table)


def _style(styles: dict[str, str] | None, cell: str) -> str:
    """A cell's style by its text or its first word (``failed (timeout)`` is styled as failed)."""
    if not styles:
        return ""
    return styles.get(cell) or styles.get(cell.split(" ", 1)[0], "")


def console(out: TextIO | None = None) -> Any:
    """A rich console on ``out`` that follows our colour rule."""
    from rich.console import Console

    out = out if out is not None else sys.stdout
    return Console(file=out, no_color=not color_enabled(out), highlight=False, soft_wrap=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return " ".join(str(value).split("\n"))


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


def format_relative(moment: datetime | None, now: datetime) -> str:
    """``19h ago``, ``in 4h 43min``, ``now`` (under a second), ``-`` for never."""
    if moment is None:
        return "-"
    delta = (_aware(now) - _aware(moment)).total_seconds()
    if abs(delta) < 1:
        return "now"
    span = format_span(delta)
    return f"{span} ago" if delta > 0 else f"in {span}"


def format_absolute(moment: datetime | None) -> str:
    """Local time with weekday and zone: ``Wed 2026-11-25 14:02:14 CET``; ``-`` for never."""
    if moment is None:
        return "-"
    return _aware(moment).astimezone().strftime("%a %Y-%m-%d %H:%M:%S %Z")


def format_moment(moment: datetime | None, now: datetime) -> str:
    """Absolute and relative: ``Wed 2026-11-25 14:02:14 CET (19h ago)``; ``-`` for never."""
    if moment is None:
        return "-"
    return f"{format_absolute(moment)} ({format_relative(moment, now)})"


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


def timeline(
    bars: Sequence[Bar],
    *,
    now: datetime,
    width: int = 40,
    color: bool = False,
    fill: str = "█",
) -> list[str]:
    """The text timeline of a run, whole-run duration on top, one row per step.

    A bar's offset and length are proportional to the step's start and duration within the
    run, with a minimum of one cell so a 4 ms step stays visible beside a 28 s one. Lines carry
    rich markup when ``color`` is on."""
    spans = [(b.start, b.end or now) for b in bars if b.start is not None]
    if not spans:
        return ["(no step has started)"]
    first = min(_aware(s) for s, _ in spans)
    last = max(_aware(e) for _, e in spans)
    total = max((last - first).total_seconds(), 0.0)
    label_width = max(len("run"), *(len(b.label) for b in bars))
    lines = [styled(f"{'run'.ljust(label_width)}  {format_duration(total)}", "bold", color)]
    for bar in bars:
        label = styled(bar.label.ljust(label_width), None, color)
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
        duration = format_duration((end - start).total_seconds())
        suffix = duration if bar.end is not None else f"{duration} (running)"
        lines.append(f"{label}  {track}  {suffix}")
    return [line.rstrip() for line in lines]


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
    stream = out if out is not None else sys.stdout
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        "█".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "#"
    return "█"


# -- plain output --------------------------------------------------------------------------------


def print_json(data: Any, out: TextIO | None = None) -> None:
    """The ``--json`` document: indented, one per command, nothing else on stdout."""
    import json

    out = out if out is not None else sys.stdout
    out.write(json.dumps(data, indent=2) + "\n")
    out.flush()


def print_lines(lines: Sequence[str], *, color: bool, out: TextIO | None = None) -> None:
    """Lines built with :func:`styled`: through rich (markup, no re-wrapping) when ``color`` is
    on, as they are otherwise."""
    out = out if out is not None else sys.stdout
    if color:
        term = console(out)
        for line in lines:
            term.print(line, soft_wrap=True)
    else:
        for line in lines:
            out.write(line + "\n")
        out.flush()
