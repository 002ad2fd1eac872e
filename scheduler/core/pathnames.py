"""File names as text that every store, JSON document and terminal accepts, losslessly.

A POSIX file name is bytes; Python reads it as ``os.fsdecode`` text, where a byte that is not
valid UTF-8 becomes a lone surrogate (U+DC80..U+DCFF). Lone surrogates are refused by UTF-8
encoders, by SQLite's and PostgreSQL's text columns and by JSON writers, and a newline or other
control character breaks a table row. So a name leaves the filesystem as *escaped* text:

- ``\\`` for a backslash,
- ``\\xHH`` for a byte that is not UTF-8 (HH >= 80) and for a control character (HH < 20, 7f),
- ``\\u00HH`` for a C1 control character (U+0080..U+009F), which is valid UTF-8 but moves a
  terminal's cursor.

Everything else (any printable Unicode, ``é``, ``日本``) is kept as is. The escaped text is what
the ledger stores, what a ``datastore://`` parameter carries and what tables and JSON show;
``unescape`` turns it back into the ``os.fsdecode`` text that opens the file (and that
``os.fsencode`` turns back into the name's exact bytes). ``unescape`` is lenient: a backslash
not followed by one of the forms above is itself, so a hand-written path keeps its meaning.
"""

from __future__ import annotations

import re

__all__ = ["escape_name", "unescape_name"]

_SURROGATE_LOW, _SURROGATE_HIGH = 0xDC80, 0xDCFF
_ESCAPES = re.compile(r"\\(\\|x[0-9a-fA-F]{2}|u00[89][0-9a-fA-F])")


def _needs_escape(char: str) -> bool:
    code = ord(char)
    return (
        char == "\\"
        or code < 0x20
        or code == 0x7F
        or 0x80 <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
    )


def escape_name(name: str) -> str:
    """The escaped text of an ``os.fsdecode`` name (see the module docstring)."""
    if not any(_needs_escape(c) for c in name):
        return name
    out: list[str] = []
    for char in name:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif _SURROGATE_LOW <= code <= _SURROGATE_HIGH:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # not from fsdecode: keep its code point visible
            out.append(f"\\u{code:04x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0x80 <= code <= 0x9F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def unescape_name(text: str) -> str:
    """The ``os.fsdecode`` name of escaped text: ``os.fsencode`` of it gives the real bytes."""
    if "\\" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if body == "\\":
            return "\\"
        code = int(body[1:], 16)
        if body[0] == "x" and code >= 0x80:
            return chr(0xDC00 + code)  # the byte, as os.fsdecode spells it
        return chr(code)

    return _ESCAPES.sub(one, text)
