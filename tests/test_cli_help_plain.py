"""``pipesched <command> --help`` is plain text: what a terminal shows carries no reST markup
from the docstrings it is made of (double backticks, roles such as :class:, directives)."""

from __future__ import annotations

import re

import click
import pytest
from click.testing import CliRunner

from scheduler.cli import COMMANDS, cli

MARKUP = re.compile(
    r"``"  # inline literal
    r"|:[a-z]+(?::[a-z]+)?:`"  # a role: :class:`X`, :py:func:`f`
    r"|^\s*\.\. [a-z-]+::"  # a directive: .. note::
    r"|^\s*\\b\s*$",  # click's no-rewrap marker shown as text
    re.MULTILINE,
)


def command_paths() -> list[tuple[str, ...]]:
    """Every command of COMMANDS, and each subcommand of the groups among them."""
    paths: list[tuple[str, ...]] = [()]
    context = click.Context(cli)
    for name in COMMANDS:
        paths.append((name,))
        command = cli.get_command(context, name)
        if isinstance(command, click.Group):
            paths += [(name, sub) for sub in command.list_commands(click.Context(command))]
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda path: " ".join(path) or "pipesched")
def test_help_shows_no_rest_markup(path: tuple[str, ...]):
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    found = [line for line in result.output.splitlines() if MARKUP.search(line)]
    assert found == [], f"pipesched {' '.join(path)} --help shows markup"


def test_the_markup_check_catches_what_it_looks_for():
    for text in ("read ``file:line``", "see :class:`Run`", ".. note::", "  \\b"):
        assert MARKUP.search(text), text
    assert not MARKUP.search("Errors: file:line:col: error: message; `pipesched run`")
