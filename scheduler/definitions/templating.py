"""``${{ namespace.name }}`` references in step fields, found and substituted.

A hand-written scanner rather than Jinja: the syntax is four fixed names, every value is a plain
string, and one argument must stay one argv element — there is nothing to evaluate, so a template
engine would only add ways to fail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from scheduler.core.runtimes import TEMPLATE_FIELDS

NAMESPACES = ("parameters", "data", "run")
RUN_FIELDS = ("id", "experiment", *TEMPLATE_FIELDS)
"""``${{run.NAME}}`` names: the run's id and experiment, and the time it stands for."""

_OPEN = "${{"
_CLOSE = "}}"
_INNER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)\s*")


class TemplateSyntaxError(ValueError):
    """A ``${{`` that does not form a ``${{ namespace.name }}`` reference."""


@dataclass(frozen=True)
class Reference:
    """One ``${{ namespace.name }}`` in a string, with its span in that string."""

    namespace: str
    name: str
    start: int
    end: int

    @property
    def canonical(self) -> str:
        return f"${{{{{self.namespace}.{self.name}}}}}"


def scan(text: str) -> list[Reference]:
    """Every reference in ``text``, in order; raise TemplateSyntaxError for a malformed one."""
    refs: list[Reference] = []
    pos = 0
    while True:
        start = text.find(_OPEN, pos)
        if start < 0:
            return refs
        end = text.find(_CLOSE, start + len(_OPEN))
        if end < 0:
            raise TemplateSyntaxError(f"'{_OPEN}' without a closing '{_CLOSE}' in {text!r}")
        inner = text[start + len(_OPEN) : end]
        match = _INNER.fullmatch(inner)
        if not match:
            raise TemplateSyntaxError(
                f"malformed reference '{text[start : end + len(_CLOSE)]}' "
                "(write ${{parameters.NAME}}, ${{data.NAME}}, ${{run.id}} or ${{run.experiment}})"
            )
        refs.append(Reference(match.group(1), match.group(2), start, end + len(_CLOSE)))
        pos = end + len(_CLOSE)


def find_references(text: str) -> list[tuple[str, str]]:
    """``[(namespace, name), ...]`` for every reference in ``text``."""
    return [(ref.namespace, ref.name) for ref in scan(text)]


def has_references(text: str) -> bool:
    return _OPEN in text


def substitute(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """Replace every reference with its value. A missing value raises KeyError: validation has
    already checked every reference, so a gap here is a bug, not a user error."""
    return _replace(text, values, partial=False)


def partially_substitute(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """Replace references whose namespace and name ``values`` has; leave the others symbolic
    (normalised to ``${{ns.name}}``) — what a reuse fingerprint needs."""
    return _replace(text, values, partial=True)


def _replace(text: str, values: Mapping[str, Mapping[str, str]], *, partial: bool) -> str:
    if _OPEN not in text:
        return text
    out: list[str] = []
    pos = 0
    for ref in scan(text):
        out.append(text[pos : ref.start])
        if partial and ref.name not in values.get(ref.namespace, {}):
            out.append(ref.canonical)
        else:
            out.append(str(values[ref.namespace][ref.name]))
        pos = ref.end
    out.append(text[pos:])
    return "".join(out)
