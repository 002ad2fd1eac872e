"""The minimal driver of the benchmarks: ``python peers_driver.py -- ARGV... [-- ARGV...]``.

Each ``--`` starts one command; they run one after another as child processes, stopping at the
first failure. What any tool that starts each step as its own process must at least cost: one
interpreter of its own plus a subprocess per step."""

import subprocess
import sys


def commands(args: list[str]) -> list[list[str]]:
    found: list[list[str]] = []
    for arg in args:
        if arg == "--":
            found.append([])
        else:
            found[-1].append(arg)
    return [c for c in found if c]


if __name__ == "__main__":
    for argv in commands(sys.argv[1:]):
        subprocess.run(argv, check=True)
