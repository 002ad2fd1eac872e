"""``pipesched completion bash|zsh|fish``: the shell's completion script, as click writes it
for ``_PIPESCHED_COMPLETE=<shell>_source pipesched``. A TAB then asks ``pipesched`` itself for
candidates: run ids newest first, pipelines, schedules, the steps of the run on the line and
metric names (the completers of ``scheduler.cli.options``)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

COMPLETE_VAR = "_PIPESCHED_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script of SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(pipesched completion bash)"     # in ~/.bashrc
    zsh:   eval "$(pipesched completion zsh)"      # in ~/.zshrc, after compinit
    fish:  pipesched completion fish > ~/.config/fish/completions/pipesched.fish
    """
    from scheduler.cli import cli  # lazy: the group imports this module on demand

    completer = get_completion_class(shell)
    assert completer is not None  # click knows every shell of SHELLS
    click.echo(completer(cli, {}, "pipesched", COMPLETE_VAR).source())
