"""``${{ namespace.name }}`` references: found, substituted whole or in part."""

from __future__ import annotations

import pytest

from scheduler.definitions.templating import (
    TemplateSyntaxError,
    find_references,
    partially_substitute,
    substitute,
)

VALUES = {
    "parameters": {"reg": "0.5", "path": "/data/a b"},
    "data": {"out": "/store/out"},
    "run": {"id": "r1", "experiment": "exp"},
}


def test_finds_every_namespace_with_whitespace_inside_braces() -> None:
    text = "${{ parameters.reg }}-${{data.out}}-${{run.id}}-${{  run.experiment}}"
    assert find_references(text) == [
        ("parameters", "reg"),
        ("data", "out"),
        ("run", "id"),
        ("run", "experiment"),
    ]


def test_text_without_references_has_none() -> None:
    assert find_references("--reg 0.5 {x} $HOME ${x}") == []


@pytest.mark.parametrize("text", ["${{ reg }}", "${{parameters.}}", "${{a.b.c}}", "x ${{run.id"])
def test_malformed_references_raise(text: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        find_references(text)


def test_substitute_replaces_inside_a_string() -> None:
    assert substitute("--reg=${{ parameters.reg }}", VALUES) == "--reg=0.5"


def test_substituted_value_with_spaces_stays_one_string() -> None:
    assert substitute("${{parameters.path}}", VALUES) == "/data/a b"


def test_missing_value_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        substitute("${{parameters.nope}}", VALUES)


def test_partial_substitution_leaves_other_namespaces_symbolic() -> None:
    text = "${{parameters.reg}} ${{ data.out }} ${{run.id}}"
    result = partially_substitute(text, {"parameters": VALUES["parameters"]})
    assert result == "0.5 ${{data.out}} ${{run.id}}"
