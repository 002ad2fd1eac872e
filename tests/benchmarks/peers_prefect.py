"""Prefect 3 runner for the peers benchmark: ``python peers_prefect.py PYTHON SCRIPT ...``.

Runs in its own virtual environment (ephemeral API, settings from the environment the benchmark
sets). One flow; each script is one task that runs it as a child process, in order."""

import subprocess
import sys

from prefect import flow, task


@task
def step(python: str, script: str) -> None:
    subprocess.run([python, script], check=True)


@flow
def chain(python: str, scripts: list[str]) -> None:
    for script in scripts:  # a task called in a flow runs to completion before the next line
        step(python, script)


if __name__ == "__main__":
    chain(sys.argv[1], sys.argv[2:])
