"""Dagster runner for the peers benchmark: ``python peers_dagster.py PYTHON SCRIPT ...``.

Runs in its own virtual environment. One job of ops chained by ``Nothing`` dependencies, each op
running one script as a child process; executed with ``execute_in_process``, console
logging at WARNING like the other tools."""

import subprocess
import sys

from dagster import In, Nothing, job, op


def _op(index: int, python: str, script: str):
    @op(name=f"s{index}", ins={"after": In(Nothing)} if index else {})
    def run_script() -> None:
        subprocess.run([python, script], check=True)

    return run_script


def build(python: str, scripts: list[str]):
    ops = [_op(i, python, s) for i, s in enumerate(scripts)]

    @job(name="chain")
    def chain() -> None:
        previous = ops[0]()
        for current in ops[1:]:
            previous = current(after=previous)

    return chain


if __name__ == "__main__":
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    result = build(sys.argv[1], sys.argv[2:]).execute_in_process(run_config=quiet)
    sys.exit(0 if result.success else 1)
