"""Run ids: short, sortable by time, easy to type, and any unique prefix finds a run.

The choice: milliseconds since the Unix epoch in lowercase Crockford base32, fixed at 9
characters (good until the year 3084), then 4 random Crockford characters — 13 characters such
as ``01kaxq4m7b3fz``. Crockford's alphabet has no i, l, o or u, so an id read aloud or copied
by hand cannot be misread, and it is case-insensitive (``normalize_id`` also maps the look-alikes
``o``→``0`` and ``i``/``l``→``1``, as Crockford suggests). Because the time comes first and has a
fixed width, string order is time order, so the store pages and sorts by the primary key
alone. Two ids made in the same millisecond differ in their random tail (about a million
values) and sort in no particular order between themselves. Like ULIDs, minus the 26-character
length: a scheduler's runs are seconds apart, not nanoseconds.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
TIME_CHARS = 9
RANDOM_CHARS = 4
ID_LENGTH = TIME_CHARS + RANDOM_CHARS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_LOOK_ALIKES = str.maketrans({"o": "0", "i": "1", "l": "1", "-": None})


def _encode(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 32)
        chars.append(ALPHABET[digit])
    if number:
        raise ValueError(f"{number} does not fit in {width} base32 characters")
    return "".join(reversed(chars))


def new_run_id(now: datetime) -> str:
    """A new run id for a run created at ``now`` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("run ids need an aware datetime")
    millis = (now - _EPOCH) // _MILLISECOND
    return _encode(millis, TIME_CHARS) + _encode(secrets.randbits(5 * RANDOM_CHARS), RANDOM_CHARS)


def id_time(run_id: str) -> datetime:
    """The creation time encoded in a run id, to the millisecond."""
    millis = 0
    for char in normalize_id(run_id)[:TIME_CHARS]:
        millis = millis * 32 + ALPHABET.index(char)
    return _EPOCH + millis * _MILLISECOND


def normalize_id(text: str) -> str:
    """What the user typed, as stored: lowercase, look-alikes mapped, hyphens dropped."""
    return text.strip().lower().translate(_LOOK_ALIKES)


def is_id_prefix(text: str) -> bool:
    """Whether a normalized string could start a run id."""
    return 0 < len(text) <= ID_LENGTH and all(char in ALPHABET for char in text)


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """The smallest and largest id starting with ``prefix``: ids are fixed-width and use only
    [0-9a-z], so a BETWEEN on the primary key finds them under any collation (a ``LIKE``
    would not use the index on SQLite or under a non-C PostgreSQL collation)."""
    pad = ID_LENGTH - len(prefix)
    return prefix + ALPHABET[0] * pad, prefix + ALPHABET[-1] * pad
