"""What the three drawings share: nice axis ticks, numbers and durations as labels, and text made
safe for SVG.

Every text a drawing shows (a step's name, a metric's name, a run's label) comes from users and
may hold anything: ``<``, ``&``, quotes, emoji, control characters, thousands of characters.
``text`` escapes it and replaces what XML cannot carry at all, so the ``<svg>`` stays well-formed
whatever the names are; ``truncate`` shortens it by display width, so a name of wide characters
does not run across the drawing.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata

from markupsafe import Markup, escape

# Characters XML 1.0 cannot carry even escaped: C0 controls but tab, newline and carriage return,
# lone surrogates, and the two non-characters U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.\-]*):")
_SAFE_SCHEMES = {"http", "https"}
ELLIPSIS = "…"

# Steps of a time axis, in seconds: each reads as a round number of its unit.
_DURATION_STEPS = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86400,
)


def text(value: object) -> Markup:
    """``value`` as text for an SVG element or attribute: escaped, and with the characters XML
    cannot hold replaced by U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", str(value)))


def safe_href(href: str | None) -> str | None:
    """``href`` if following it cannot run script: a path or an http(s) address. A
    ``javascript:`` or ``data:`` link is dropped (the drawing shows no link at all)."""
    if href is None:
        return None
    match = _SCHEME.match(href)
    if match is not None and match.group(1).lower() not in _SAFE_SCHEMES:
        return None
    return href


def _columns(char: str) -> int:
    """How many columns ``char`` takes in a proportional font, roughly: wide East Asian
    characters and emoji two, combining marks none, the rest one."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(value: str) -> int:
    """The width of ``value`` in columns (see ``_columns``)."""
    return sum(_columns(char) for char in value)


def truncate(value: str, columns: int) -> str:
    """``value`` cut to at most ``columns`` columns, ending in an ellipsis when cut."""
    if display_width(value) <= columns:
        return value
    kept, used = [], 0
    for char in value:
        width = _columns(char)
        if used + width > columns - 1:
            break
        kept.append(char)
        used += width
    return "".join(kept).rstrip() + ELLIPSIS


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round values from the last one at or below ``low`` to the first one at or above ``high``,
    a step of 1, 2 or 5 times a power of ten apart, the step that makes about ``target`` of them.

    Where the range is too wide or too narrow for floats to step through (near the largest or
    the smallest float), the ticks are ``low`` and ``high`` themselves, or only those ticks that
    stay finite."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"ticks need finite bounds, not {low!r} and {high!r}")
    low, high = min(low, high), max(low, high)
    if low == high:
        return [low]
    # Halves first: the difference of two large floats of opposite signs overflows.
    raw = (high / 2 - low / 2) / target * 2
    if not raw > 0 or not math.isfinite(raw):
        return [low, high]
    base = 10.0 ** math.floor(math.log10(raw))
    if base == 0 or not math.isfinite(base):
        return [low, high]
    span = raw * target
    step = min((m * base for m in (1, 2, 5, 10)), key=lambda step: abs(span / step - target))
    first, last = math.floor(low / step), math.ceil(high / step)
    if last - first > 4 * target + 2:  # float rounding made a mess of it
        return [low, high]
    ticks: list[float] = []
    for k in range(first, last + 1):
        value = k * step
        if math.isfinite(value) and (not ticks or value > ticks[-1]):
            ticks.append(value)
    return ticks if len(ticks) >= 2 else [low, high]


def duration_ticks(end: float, target: int = 6) -> list[float]:
    """Ticks of a time axis from 0 to at least ``end`` seconds, at a step that reads as a round
    number of its unit (500 ms, 5 s, 15 s, 5 min, 6 h, 2 d), about ``target`` of them."""
    if not math.isfinite(end) or end <= 0:
        return [0.0, 1.0]
    raw = end / target
    step = next((float(s) for s in _DURATION_STEPS if s >= raw), None)
    if step is None:  # days: 1, 2, 5, 10, 20 ... of them
        days = raw / 86400
        base = 10.0 ** math.floor(math.log10(days))
        step = next(m * base for m in (1, 2, 5, 10) if m * base >= days) * 86400
    count = max(1, math.ceil(end / step - 1e-9))
    return [k * step for k in range(count + 1)]


def format_number(value: float, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits: ``0.25``, ``1234``, ``12340``, ``-3.5``, and
    with an exponent when huge or tiny: ``1.2e+09``, ``3e-07``."""
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("∞" if value > 0 else "-∞")
    shown = f"{value:.{digits}g}"
    if "e" not in shown:
        return shown
    power = int(shown.partition("e")[2])
    if -4 <= power < 6:  # ``g`` writes 12345 as 1.234e+04 with 4 digits: spell it out
        decimals = max(0, digits - 1 - power)
        fixed = f"{float(shown):.{decimals}f}"
        return fixed.rstrip("0").rstrip(".") if "." in fixed else fixed
    return shown


def format_ticks(ticks: list[float]) -> list[str]:
    """Labels for ``ticks``, with 4 significant digits or as many more as it takes for no two
    labels to read the same."""
    labels = [format_number(tick) for tick in ticks]
    for digits in range(5, sys.float_info.dig + 3):
        if len(set(labels)) == len(labels):
            break
        labels = [format_number(tick, digits) for tick in ticks]
    return labels


def format_duration(seconds: float) -> str:
    """A duration as a person reads it, in its one or two largest units: ``4 ms``, ``2.5 s``,
    ``28 s``, ``4 min 12 s``, ``1 h 3 min``, ``2 d 5 h``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds <= 0:
        return "0 s"
    if seconds >= 1e12:  # past what whole seconds count exactly: days, in significant digits
        return f"{format_number(seconds / 86400)} d"
    millis = round(seconds * 1000)
    if millis < 1000:
        return f"{millis} ms" if millis > 0 else "< 1 ms"
    if round(seconds, 1) < 10:
        return f"{round(seconds, 1):g} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def svg_open(
    *, element_id: str, kind: str, width: float, height: float, label: str, extra_class: str = ""
) -> str:
    """The opening ``<svg>`` tag every drawing starts with: scaled to its container's width,
    an image to assistive technology, named by ``label``."""
    classes = f"drawing {kind} {extra_class}".strip()
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{text(element_id)}" class="{classes}"'
        f' viewBox="0 0 {width:.0f} {height:.0f}" width="100%" role="img"'
        f' aria-label="{text(label)}">'
    )


def status_class(status: str) -> str:
    """The CSS class of ``status``: ``status-`` and the status's letters, digits and dashes
    (anything else dropped, so a strange status cannot break out of the attribute)."""
    return "status-" + re.sub(r"[^a-z0-9-]", "", status.lower())


def coordinate(value: float) -> str:
    """A coordinate as SVG gets it: two decimals at most, no trailing zeros."""
    shown = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if shown in ("", "-0") else shown
