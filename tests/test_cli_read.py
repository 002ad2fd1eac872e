"""The read side of the CLI (runs, show, logs) against a real SQLite store filled through the
Store API, and pipelines/validate against real definition files."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from scheduler.cli import main
from scheduler.core.clock import Clock
from scheduler.store import Store
from scheduler.store.records import Metric
from tests.test_cli_run import RUN_KEYS  # DESIGN's runs --json keys

STEPS = [("prep", "Prepare Data", "python_script"), ("train", "Train Model", "python_script")]


class TickClock(Clock):
    """Each reading one second after the last: runs get ids in creation order, steps real spans."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
        self.lock = threading.Lock()

    def now(self) -> datetime:
        with self.lock:
            self.moment += timedelta(seconds=1)
            return self.moment


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    (tmp_path / "pipelines").mkdir()
    (folder / "schedules.yaml").write_text("schedules: []\n")
    path = folder / "pipesched.yaml"
    path.write_text("state_dir: ../var\npipelines_dir: ../pipelines\nschedules: schedules.yaml\n")
    return path


@pytest.fixture
def store(config_file: Path) -> Iterator[Store]:
    from scheduler.definitions.config import load_config

    with Store.open(load_config(config_file).database_url, clock=TickClock()) as opened:
        yield opened


@pytest.fixture
def pipesched(config_file: Path) -> Callable[..., Result]:
    """Run ``pipesched ARGS -c CONFIG`` in-process through the real entry point (``main``), so
    exit codes and error lines are the ones users get."""

    def invoke(*args: str, during: Callable[[Callable[[], str]], None] | None = None) -> Result:
        runner = CliRunner()
        with runner.isolation() as (out, err, _):
            worker = None
            if during is not None:  # runs beside the command, seeing its output so far
                worker = threading.Thread(target=during, args=(lambda: out.getvalue().decode(),))
                worker.start()
            try:
                main([*args, "-c", str(config_file)])
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            if worker is not None:
                worker.join(timeout=10)
            return Result(code, out.getvalue().decode(), err.getvalue().decode())

    return invoke


def add_run(
    store: Store,
    tmp_path: Path,
    *,
    pipeline: str = "training",
    status: str = "completed",
    logs: dict[str, str] | None = None,
) -> str:
    """A run whose steps all ran (each with ``logs[step]`` as its log) and ended ``status``."""
    run = store.create_run(
        pipeline=pipeline,
        content_hash="c0ffee",
        experiment=pipeline,
        parameters={"reg_rate": 0.01},
        trigger="manual",
        steps=STEPS,
    )
    store.start_run(run.id)
    for step, text in (logs or {}).items():
        begin(store, tmp_path, run.id, step, 1, text)
        store.end_attempt(run.id, step, 1, status="completed", exit_code=0)
    if status != "running":
        store.finish_run(run.id, status)
    return run.id


def begin(store: Store, tmp_path: Path, run_id: str, step: str, attempt: int, text: str) -> Path:
    folder = tmp_path / "var" / "runs" / run_id / step
    (folder / str(attempt) / "outputs").mkdir(parents=True, exist_ok=True)
    log = folder / f"{attempt}.log"
    log.write_text(text)
    store.begin_attempt(
        run_id, step, attempt, log_path=str(log), workdir=str(folder / str(attempt))
    )
    return log


def shortest_unique_prefix(run_id: str, others: list[str]) -> str:
    for length in range(1, len(run_id) + 1):
        if not any(other.startswith(run_id[:length]) for other in others):
            return run_id[:length]
    raise AssertionError("no unique prefix")


# -- runs ----------------------------------------------------------------------------------------


def test_runs_json_lists_newest_first_in_designs_shape(store, tmp_path, pipesched) -> None:
    ids = [add_run(store, tmp_path) for _ in range(3)]
    result = pipesched("runs", "--json")
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [r["id"] for r in listed] == ids[::-1]
    assert set(listed[0]) == RUN_KEYS | {"metrics"}  # each run's metrics, by step
    assert listed[0]["status"] == "completed"


def test_runs_limit_defaults_to_20_and_0_lists_all(store, tmp_path, pipesched) -> None:
    for _ in range(22):
        add_run(store, tmp_path)
    assert len(json.loads(pipesched("runs", "--json").stdout)) == 20
    assert len(json.loads(pipesched("runs", "--json", "--limit", "0").stdout)) == 22
    assert len(json.loads(pipesched("runs", "--json", "--limit", "3").stdout)) == 3


def test_runs_filter_by_pipeline_and_repeated_status(store, tmp_path, pipesched) -> None:
    failed = add_run(store, tmp_path, status="failed")
    canceled = add_run(store, tmp_path, status="canceled")
    add_run(store, tmp_path, status="completed")
    add_run(store, tmp_path, pipeline="scoring", status="failed")
    result = pipesched(
        "runs", "--json", "--pipeline", "training", "--status", "failed", "--status", "canceled"
    )
    assert [r["id"] for r in json.loads(result.stdout)] == [canceled, failed]


def test_runs_table_off_a_terminal_is_plain_with_whole_ids(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, status="failed")
    lines = pipesched("runs").stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "PIPELINE",
        "STATUS",
        "TRIGGER",
        "CREATED",
        "DURATION",
        "REASON",
    ]
    assert lines[1].split()[:4] == [run_id, "training", "failed", "manual"]
    assert pipesched("runs", "--no-headers").stdout.splitlines()[0].split()[0] == run_id


# -- show ----------------------------------------------------------------------------------------


def test_show_accepts_a_unique_prefix(store, tmp_path, pipesched) -> None:
    first = add_run(store, tmp_path, logs={"prep": "ok\n"})
    second = add_run(store, tmp_path)
    result = pipesched("show", shortest_unique_prefix(first, [second]), "--json")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["id"] == first
    assert [s["name"] for s in shown["steps"]] == ["prep", "train"]
    assert shown["parameters"] == {"reg_rate": 0.01}


def test_show_ambiguous_prefix_exits_1_naming_the_candidates(store, tmp_path, pipesched) -> None:
    first, second = add_run(store, tmp_path), add_run(store, tmp_path)
    common = next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)
    assert common > 0
    result = pipesched("show", first[:common])
    assert result.exit_code == 1
    assert first in result.stderr
    assert second in result.stderr
    assert result.stdout == ""


def test_show_unknown_run_exits_1_with_one_line(store, pipesched) -> None:
    result = pipesched("show", "zzzz")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_show_text_has_steps_metrics_outputs_files_and_timeline(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, logs={"prep": "p\n"})
    log = begin(store, tmp_path, run_id, "train", 1, "t\n")
    model = log.parent / "1" / "outputs" / "model.pkl"
    model.write_bytes(b"model")
    store.add_metrics(run_id, [Metric("train", 1, "accuracy", "scalar", 0.93, datetime.now(UTC))])
    store.end_attempt(
        run_id, "train", 1, status="failed", exit_code=3, outputs={"model": "/data/model"}
    )
    result = pipesched("show", run_id)
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "Status      completed" in text
    train_row = next(line for line in text.splitlines() if line.startswith("train "))
    assert "Train Model" in train_row  # the display name beside the step id
    assert "accuracy=0.93" in train_row
    assert " 3 " in train_row  # the exit code
    assert "train/model  /data/model" in text
    assert str(model) in text
    timeline = text.split("Timeline\n", 1)[1].splitlines()
    assert timeline[0].startswith("run ")
    assert [line.split()[0] for line in timeline[1:]] == ["prep", "train"]


# -- logs ----------------------------------------------------------------------------------------


def test_logs_n_prints_the_last_lines(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, logs={"prep": "one\ntwo\nthree\nfour\n"})
    result = pipesched("logs", run_id, "--step", "prep", "-n", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "three\nfour\n"


def test_logs_step_accepts_the_display_name(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, logs={"prep": "prepared\n", "train": "trained\n"})
    assert pipesched("logs", run_id, "--step", "Train Model").stdout == "trained\n"


def test_logs_without_step_prints_every_step_in_start_order(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, logs={"train": "trained", "prep": "prepared\n"})
    result = pipesched("logs", run_id)
    assert result.stdout == (
        "==> train (attempt 1) <==\ntrained\n\n==> prep (attempt 1) <==\nprepared\n"
    )


def test_logs_attempt_picks_an_earlier_attempt(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, status="running")
    begin(store, tmp_path, run_id, "prep", 1, "first try\n")
    store.end_attempt(run_id, "prep", 1, status="failed", exit_code=1)
    begin(store, tmp_path, run_id, "prep", 2, "second try\n")
    assert pipesched("logs", run_id, "--step", "prep").stdout == "second try\n"
    assert pipesched("logs", run_id, "--step", "prep", "--attempt", "1").stdout == "first try\n"


def test_logs_of_a_step_with_no_log_yet_exits_1(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, status="running")
    result = pipesched("logs", run_id, "--step", "train")
    assert result.exit_code == 1
    assert "no log yet" in result.stderr


def test_logs_unknown_step_exits_1_listing_the_steps(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, logs={"prep": "x\n"})
    result = pipesched("logs", run_id, "--step", "nope")
    assert result.exit_code == 1
    assert "prep (Prepare Data)" in result.stderr


def finish_after_output(store: Store, run_id: str, log: Path, status: str):
    """A step that goes on writing once ``logs -f`` has printed its first line, then ends."""

    def work(printed: Callable[[], str]) -> None:
        wait_until(lambda: "first" in printed())
        with log.open("a") as handle:
            handle.write("second\n")
        store.end_attempt(run_id, "train", 1, status=status, exit_code=int(status != "completed"))
        store.finish_run(run_id, status)

    return work


def test_logs_follow_prints_new_output_and_returns_when_the_step_ends(
    store, tmp_path, pipesched
) -> None:
    run_id = add_run(store, tmp_path, status="running")
    log = begin(store, tmp_path, run_id, "train", 1, "first\n")
    result = pipesched(
        "logs", run_id, "--step", "train", "-f",
        during=finish_after_output(store, run_id, log, "completed"),
    )  # fmt: skip
    assert result.stdout == "first\nsecond\n"
    assert result.exit_code == 0


def test_logs_follow_of_the_run_exits_1_when_it_fails(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, status="running")
    log = begin(store, tmp_path, run_id, "train", 1, "first\n")
    result = pipesched(
        "logs", run_id, "-f", during=finish_after_output(store, run_id, log, "failed")
    )
    assert result.stdout == "==> train (attempt 1) <==\nfirst\nsecond\n"
    assert result.exit_code == 1


def test_logs_follow_of_a_step_goes_on_into_its_retry(store, tmp_path, pipesched) -> None:
    run_id = add_run(store, tmp_path, status="running")
    begin(store, tmp_path, run_id, "train", 1, "first\n")

    def retry(printed: Callable[[], str]) -> None:
        wait_until(lambda: "first" in printed())
        store.end_attempt(run_id, "train", 1, status="failed", exit_code=1)
        begin(store, tmp_path, run_id, "train", 2, "retry ok\n")
        store.end_attempt(run_id, "train", 2, status="completed", exit_code=0)
        store.finish_run(run_id, "completed")

    result = pipesched("logs", run_id, "--step", "train", "-f", during=retry)
    assert result.stdout == "first\n\n==> train (attempt 2) <==\nretry ok\n"
    assert result.exit_code == 0


# -- pipelines and validate ----------------------------------------------------------------------

GOOD_PIPELINE = """\
description: Prepare the data
steps:
  prep:
    type: python_script
    script: prep.py
"""
BAD_PIPELINE = """\
steps:
  prep:
    type: python_script
    script: prep.py
    retries: many
  train:
    type: no_such_type
"""


def add_pipeline(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "pipelines" / name
    folder.mkdir(parents=True)
    (folder / "prep.py").write_text("print('prep')\n")
    (folder / "pipeline.yaml").write_text(text)
    return folder / "pipeline.yaml"


def test_pipelines_lists_valid_ones_and_invalid_ones_with_their_error(tmp_path, pipesched) -> None:
    good = add_pipeline(tmp_path, "good", GOOD_PIPELINE)
    add_pipeline(tmp_path, "broken", BAD_PIPELINE)
    result = pipesched("pipelines", "--json")
    assert result.exit_code == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["good"]["status"] == "ok"
    assert listed["good"]["steps"] == ["prep"]
    assert listed["good"]["description"] == "Prepare the data"
    assert listed["good"]["path"] == str(good.resolve())
    assert listed["broken"]["status"] == "invalid"
    assert "pipeline.yaml:" in listed["broken"]["errors"][0]
    table = pipesched("pipelines", "--no-headers").stdout.splitlines()
    assert [line.split()[0] for line in table] == ["broken", "good"]
    assert "invalid: " in table[0]


def test_validate_reports_every_error_then_a_count_and_exits_1(tmp_path, pipesched) -> None:
    add_pipeline(tmp_path, "broken", BAD_PIPELINE)
    result = pipesched("validate")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) >= 3  # two mistakes, then the count
    assert all(": error: " in line and "pipeline.yaml:" in line for line in lines[:-1])
    assert lines[-1] == f"{len(lines) - 1} errors found"


def test_validate_ok_counts_pipelines_and_schedules(tmp_path, config_file, pipesched) -> None:
    add_pipeline(tmp_path, "good", GOOD_PIPELINE)
    (config_file.parent / "schedules.yaml").write_text(
        'schedules:\n  - {name: nightly, pipeline: good, cron: "0 0 * * *"}\n'
    )
    result = pipesched("validate")
    assert (result.exit_code, result.stdout) == (0, "ok: config, 1 pipeline, 1 schedule\n")
