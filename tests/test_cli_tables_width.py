"""Tables and pages on a real terminal: each command runs as its own process with stdout on a
pseudo-terminal of a given width, on a project with long names, long reasons and many steps.
What a user sees: one line per row, no line wider than the terminal, ids whole."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from click.testing import CliRunner

from scheduler.cli import main
from scheduler.cli.render import format_absolute, text_width
from scheduler.core.clock import Clock
from scheduler.services.tokens import create_token
from scheduler.store import Store
from scheduler.store.records import Metric
from tests.projects import Project, make_project

# 80 columns in the default stage; every width in the slow one (each is a cold subprocess).
WIDTHS = (
    80,
    pytest.param(100, marks=pytest.mark.slow),
    pytest.param(120, marks=pytest.mark.slow),
    pytest.param(200, marks=pytest.mark.slow),
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
START = datetime.now(UTC) - timedelta(days=3)

TRAINING = "diabetes-training-with-feature-store"
SCORING = "nightly-batch-scoring-of-new-patients"
BROKEN = "broken-pipeline-with-a-typo-in-it"
STEPS = [
    ("load-patient-records-from-warehouse", "Load patient records from the warehouse"),
    ("deduplicate-and-clean-patient-rows", "Deduplicate and clean patient rows"),
    ("compute-features-for-risk-model", "Compute features for the risk model"),
    ("split-train-validation-and-test", "Split into train, validation and test sets"),
    ("train-gradient-boosted-classifier", "Train the gradient boosted classifier"),
    ("train-logistic-regression-baseline", "Train the logistic regression baseline"),
    ("compare-candidates-on-validation", "Compare candidates on the validation set"),
    ("calibrate-chosen-model-probabilities", "Calibrate the chosen model's probabilities"),
    ("evaluate-on-held-out-test-patients", "Evaluate on held-out test patients"),
    ("explain-predictions-with-shap-values", "Explain predictions with SHAP values"),
    ("register-model-in-the-registry", "Register the model in the registry"),
    ("publish-report-to-the-clinic-portal", "Publish the report to the clinic portal"),
]
SCHEDULES = {
    "weekly-diabetes-training-for-the-clinic": TRAINING,
    "score-new-patients-every-fifteen-minutes": SCORING,
    "disabled-monthly-retraining-of-everything": TRAINING,
    "retrain-when-new-patient-files-land": TRAINING,
}
MODEL = "diabetes-risk-classifier-gradient-boosted"
TOKEN = "ci-deploy-bot-for-the-clinic-cluster"
REASON = (
    "step load-patient-records-from-warehouse failed: exit code 3 after 2 attempts "
    "(connection to warehouse.internal.example.org:5432 refused)"
)


class SteppingClock(Clock):
    """The store's clock, set by the test: runs get spread-out creation times."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        self.moment += timedelta(seconds=7)
        return self.moment


@dataclass
class World:
    project: Project
    run_ids: list[str]
    shown: str  # the run with every step, outputs, metrics and a model


def pipeline_yaml(description: str, steps: list[tuple[str, str]]) -> str:
    lines = [f"description: {description}", "steps:"]
    for step, display_name in steps:
        lines += [f"  {step}:", "    type: python_script", f"    display_name: {display_name}"]
        lines += ["    script: step.py"]
    return "\n".join(lines) + "\n"


def schedules_yaml() -> str:
    weekly, scoring, monthly, drops = SCHEDULES
    return f"""\
schedules:
  - name: {weekly}
    pipeline: {TRAINING}
    cron: "0 0 * * MON"
    timezone: Europe/Berlin
  - name: {scoring}
    pipeline: {SCORING}
    interval: 15m
  - name: {monthly}
    pipeline: {TRAINING}
    cron: "0 3 1 * *"
    enabled: false
  - name: {drops}
    pipeline: {TRAINING}
    on_change: {{path: incoming/patients/, patterns: ["*.csv"]}}
"""


def fill_store(store: Store, clock: SteppingClock, project: Project) -> tuple[list[str], str]:
    """Runs of both pipelines (one failed with a long reason), every step of the last one with
    metrics and outputs in deep folders, a fire with a long reason, a model and a token."""
    weekly = next(iter(SCHEDULES))
    run_ids = []
    for number in range(6):
        clock.moment = START + timedelta(hours=7 * number)
        pipeline = TRAINING if number % 2 == 0 else SCORING
        run = store.create_run(
            pipeline=pipeline,
            content_hash="c0ffee",
            experiment=f"{pipeline}-experiment",
            parameters={"reg_rate": 0.01, "rows": 4000, "seed": number},
            trigger=f"schedule:{weekly}" if number % 2 == 0 else "manual",
            steps=[(step, name, "python_script") for step, name in STEPS],
            schedule=weekly if number % 2 == 0 else None,
        )
        store.start_run(run.id)
        deep = project.datastore / "runs" / run.id / "outputs" / "very-long-folder-name-for-data"
        for attempt_step, _ in STEPS:
            store.begin_attempt(run.id, attempt_step, 1, workdir=str(deep / attempt_step))
            store.add_metrics(
                run.id,
                [
                    Metric(attempt_step, 1, "accuracy", "scalar", 0.9312, clock.now()),
                    Metric(attempt_step, 1, "roc_auc", "scalar", 0.8731, clock.now()),
                ],
            )
            store.end_attempt(
                run.id,
                attempt_step,
                1,
                status="failed" if number == 1 and attempt_step == STEPS[0][0] else "completed",
                exit_code=3 if number == 1 and attempt_step == STEPS[0][0] else 0,
                reason=REASON if number == 1 and attempt_step == STEPS[0][0] else None,
                outputs={"model_output": str(deep / attempt_step / "model.pkl")},
            )
        store.finish_run(
            run.id, "failed" if number == 1 else "completed", REASON if number == 1 else None
        )
        run_ids.append(run.id)
    shown = run_ids[-1]
    clock.moment = START + timedelta(days=1)
    store.register_schedules({name: "file" for name in SCHEDULES})
    nominal = START.replace(minute=0, second=0, microsecond=0)
    store.claim_fire(weekly, nominal)
    store.update_fire(weekly, nominal, outcome="started", run_id=run_ids[0])
    later = nominal + timedelta(days=1)
    store.claim_fire(weekly, later)
    store.update_fire(
        weekly,
        later,
        outcome="skipped",
        reason=f"the previous run {run_ids[0]} was still running (concurrency: forbid) and "
        "this fire time was skipped as its policy says",
    )
    model_dir = project.datastore / ".pipesched" / "models" / MODEL / "1"
    model_dir.mkdir(parents=True)
    (model_dir / "gradient-boosted-classifier-calibrated.pkl").write_bytes(b"model")
    store.add_model(
        MODEL,
        1,
        str(model_dir),
        tags={"area": "diabetes", "framework": "scikit-learn", "owner": "clinic-data-team"},
        properties={"accuracy": 0.9312, "roc_auc": 0.8731},
        description="Gradient boosted classifier of diabetes risk, calibrated, for the clinic",
        run_id=shown,
        step="register-model-in-the-registry",
    )
    create_token(store, TOKEN)
    return run_ids, shown


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    project = make_project(tmp_path_factory.mktemp("tables"))
    project.pipeline(
        TRAINING,
        pipeline_yaml(
            "Prepare the diabetes data, compute features, train two candidates, calibrate and "
            "evaluate the better one, explain it, then publish a report",
            STEPS,
        ),
        {"step.py": "print('step')\n"},
    )
    project.pipeline(
        SCORING,
        pipeline_yaml("Score the patients that arrived today with the registered model", STEPS[:3]),
        {"step.py": "print('step')\n"},
    )
    project.pipeline(BROKEN, "steps:\n  a: {type: python_script, script: missing.py}\n")
    project.schedules(schedules_yaml())
    clock = SteppingClock(START)
    with Store.open(project.config().database_url, clock=clock) as store:
        run_ids, shown = fill_store(store, clock, project)
    yield World(project, run_ids, shown)


def on_terminal(project: Project, width: int, *args: str, no_color: bool = False) -> str:
    """What ``pipesched ARGS`` prints on a terminal ``width`` columns wide: the command runs as
    a process whose stdout is a pseudo-terminal of that size; its lines, CR LF made LF."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    env = {**os.environ, "PIPESCHED_CONFIG": str(project.config_path), "TERM": "xterm-256color"}
    env["TZ"] = "UTC"
    for name in ("COLUMNS", "LINES", "NO_COLOR"):
        env.pop(name, None)
    if no_color:
        env["NO_COLOR"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "scheduler.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
        cwd=project.root,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            raise AssertionError(f"pipesched {' '.join(args)} did not finish in time")
    finally:
        os.close(master)
        stderr = process.communicate(timeout=60)[1].decode()
    assert process.returncode == 0, stderr
    return b"".join(chunks).decode().replace("\r\n", "\n")


def visible(output: str) -> list[str]:
    """The lines as a user sees them: colour codes taken out."""
    return ANSI.sub("", output).splitlines()


def assert_fits(lines: list[str], width: int) -> None:
    too_wide = [line for line in lines if text_width(line) > width]
    assert not too_wide, f"wider than {width} columns:\n" + "\n".join(too_wide)


def assert_ids_whole(text: str, ids: list[str]) -> None:
    """An id is shown whole or not at all: never its start alone."""
    for run_id in ids:
        assert run_id in text or run_id[:6] not in text, f"{run_id} cut in:\n{text}"


def assert_one_line_per_row(lines: list[str], names: list[str]) -> None:
    """A header, then exactly one line per row, each starting with the row's name or id."""
    assert len(lines) == 1 + len(names), "\n".join(lines)
    assert [line.split()[0] for line in lines[1:]] == names


# -- each table at each width --------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_fit_the_terminal_one_line_per_run_with_whole_ids(world: World, width: int) -> None:
    lines = visible(on_terminal(world.project, width, "runs"))
    assert_fits(lines, width)
    assert_one_line_per_row(lines, list(reversed(world.run_ids)))
    assert lines[0].split()[:3] == ["ID", "PIPELINE", "STATUS"]
    assert all(line.split()[1] in (TRAINING, SCORING) for line in lines[1:])
    failed = next(line for line in lines if line.startswith(world.run_ids[1]))
    if width >= 200:  # room for the reason's start at least
        assert REASON[:60] in failed


@pytest.mark.parametrize("width", WIDTHS)
def test_metrics_fit_the_terminal_one_line_per_run_then_a_sparkline_each(
    world: World, width: int
) -> None:
    lines = visible(on_terminal(world.project, width, "metrics", TRAINING))
    assert_fits(lines, width)
    table = lines[: lines.index("")]
    ours = [run_id for run_id in reversed(world.run_ids) if run_id in "\n".join(table)]
    assert_one_line_per_row(table, ours)
    sparklines = lines[lines.index("") + 1 :]
    assert sparklines and all("last 0.9312" in line or "last 0.8731" in line for line in sparklines)


@pytest.mark.parametrize("width", WIDTHS)
def test_show_fits_the_terminal_with_one_line_per_step(world: World, width: int) -> None:
    lines = visible(on_terminal(world.project, width, "show", world.shown))
    assert_fits(lines, width)
    text = "\n".join(lines)
    assert f"Run         {world.shown}" in text
    steps_table = lines[lines.index("") + 1 :]
    steps_table = steps_table[: steps_table.index("")]
    assert_one_line_per_row(steps_table, [step for step, _ in STEPS])
    timeline = lines[lines.index("Timeline") + 1 :]
    assert timeline[0].startswith("run ")
    assert [line.split()[0] for line in timeline[1:]] == [step for step, _ in STEPS]
    assert_ids_whole(text, world.run_ids)


@pytest.mark.parametrize("width", WIDTHS)
def test_schedules_fit_the_terminal_one_line_per_schedule(world: World, width: int) -> None:
    lines = visible(on_terminal(world.project, width, "schedules"))
    assert_fits(lines, width)
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(SCHEDULES)
    assert len(lines) == 1 + len(SCHEDULES)
    header = lines[0].split()
    assert header[0] == "SCHEDULE" and {"NEXT", "RESULT"} <= set(header)


@pytest.mark.parametrize("width", WIDTHS)
def test_fires_fit_the_terminal_with_whole_run_ids(world: World, width: int) -> None:
    lines = visible(on_terminal(world.project, width, "fires"))
    assert_fits(lines, width)
    assert len(lines) == 3
    assert all(line.split()[0] == next(iter(SCHEDULES)) for line in lines[1:])
    if width >= 100:  # at 80 the run may give way to the long schedule name and the time
        assert "RUN" in lines[0].split()
        assert world.run_ids[0] in lines[2]  # the older fire started it
    assert_ids_whole("\n".join(lines[1:]), world.run_ids)


@pytest.mark.parametrize("width", WIDTHS)
def test_pipelines_fit_the_terminal_one_line_per_pipeline(world: World, width: int) -> None:
    lines = visible(on_terminal(world.project, width, "pipelines"))
    assert_fits(lines, width)
    assert_one_line_per_row(lines, sorted([TRAINING, SCORING, BROKEN]))
    assert "invalid" in next(line for line in lines if line.startswith(BROKEN))


@pytest.mark.parametrize("width", WIDTHS)
def test_models_fit_the_terminal_with_whole_ids(world: World, width: int) -> None:
    lines = visible(on_terminal(world.project, width, "models"))
    assert_fits(lines, width)
    assert_one_line_per_row(lines, [MODEL])
    assert lines[1].split()[1] == "1"
    assert_ids_whole(lines[1], world.run_ids)
    page = visible(on_terminal(world.project, width, "models", "show", MODEL))
    assert_fits(page, width)
    assert page[0].split() == ["Model", f"{MODEL}:1"]
    assert f"{world.shown} (step register-model-in-the-registry)" in "\n".join(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_token_list_fits_the_terminal_without_microseconds(world: World, width: int) -> None:
    lines = visible(on_terminal(world.project, width, "token", "list"))
    assert_fits(lines, width)
    assert_one_line_per_row(lines, [TOKEN])
    assert lines[1].split()[-1] == "active" and " ago " in lines[1]
    wide = visible(on_terminal(world.project, width, "token", "list", "-o", "wide"))[1]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", wide)
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", wide)  # no microseconds


@pytest.mark.parametrize("width", WIDTHS)
def test_next_fits_the_terminal(world: World, width: int) -> None:
    lines = visible(on_terminal(world.project, width, "next", "0 0 * * MON", "-n", "4"))
    assert_fits(lines, width)
    assert lines[1].split() == ["NEXT", "LEFT"]
    assert len(lines) == 6


# -- what gives way, and -o wide -----------------------------------------------------------------


def test_at_80_columns_the_least_useful_columns_give_way_first(world: World) -> None:
    narrow = visible(on_terminal(world.project, 80, "runs"))[0].split()
    roomy = visible(on_terminal(world.project, 200, "runs"))[0].split()
    assert roomy == ["ID", "PIPELINE", "STATUS", "TRIGGER", "CREATED", "DURATION", "REASON"]
    assert narrow[:3] == ["ID", "PIPELINE", "STATUS"]
    kept = [header for header in roomy if header in narrow]
    assert kept == narrow  # nothing reordered, only left out
    assert "CREATED" in narrow and "REASON" not in narrow


def test_wide_shows_every_column_and_absolute_times_even_on_a_narrow_terminal(
    world: World,
) -> None:
    lines = visible(on_terminal(world.project, 80, "runs", "-o", "wide"))
    header = lines[0].split()
    assert {"TRIGGER", "REASON", "EXPERIMENT", "STARTED", "FINISHED"} <= set(header)
    failed = next(line for line in lines if line.startswith(world.run_ids[1]))
    assert REASON in failed
    with Store.open(world.project.config().database_url) as store:
        run = store.get_run(world.run_ids[1])
    assert format_absolute(run.created_at, UTC) in failed  # Sat 2026-12-05 08:22:45 UTC
    schedules = visible(on_terminal(world.project, 80, "schedules", "-o", "wide"))
    assert schedules[0].split()[-1] == "DESCRIPTION"
    weekly = next(line for line in schedules if line.startswith(next(iter(SCHEDULES))))
    assert re.search(r"Mon \d{4}-\d\d-\d\d 00:00:00 CES?T \(in ", weekly)
    assert "At 00:00, only on Monday" in weekly


ABSOLUTE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z]+")
WIDE_HEADERS = {
    "runs": "ID PIPELINE STATUS TRIGGER CREATED DURATION REASON EXPERIMENT STARTED FINISHED",
    "schedules": "SCHEDULE PIPELINE WHEN NEXT LAST RESULT DESCRIPTION",
    "fires": "SCHEDULE,NOMINAL TIME/FILE,OUTCOME,RUN,REASON",
    "pipelines": "NAME STEPS VERSIONS STATUS DESCRIPTION ENDPOINT PATH",
    "models": "NAME VERSION CREATED RUN STEP TAGS DESCRIPTION PROPERTIES PATH",
    "token list": "NAME,CREATED,LAST USED,STATUS",
}


@pytest.mark.parametrize("command", WIDE_HEADERS)
def test_wide_has_every_column_at_any_width(world: World, command: str) -> None:
    lines = visible(on_terminal(world.project, 80, *command.split(), "-o", "wide"))
    expected = WIDE_HEADERS[command]
    headers = expected.split(",") if "," in expected else expected.split()
    assert re.split(r"\s{2,}", lines[0]) == headers
    assert "…" not in "\n".join(lines)  # nothing shortened
    if command != "pipelines":  # the others have times: absolute, with weekday and zone
        assert ABSOLUTE.search("\n".join(lines[1:]))


def test_show_wide_keeps_paths_whole(world: World) -> None:
    narrow = "\n".join(visible(on_terminal(world.project, 80, "show", world.shown)))
    wide = "\n".join(visible(on_terminal(world.project, 80, "show", world.shown, "-o", "wide")))
    path = str(world.project.datastore / "runs" / world.shown / "outputs")
    assert path not in narrow and path in wide


def test_colour_on_a_terminal_and_none_with_no_color(world: World) -> None:
    assert "\x1b[" in on_terminal(world.project, 120, "runs")
    assert "\x1b[" not in on_terminal(world.project, 120, "runs", no_color=True)
    assert "\x1b[" not in on_terminal(world.project, 120, "show", world.shown, no_color=True)


# -- -o json -------------------------------------------------------------------------------------


def in_process(project: Project, *args: str) -> str:
    """stdout of ``pipesched ARGS`` run in-process with the clock frozen, so two runs agree."""
    runner = CliRunner()
    frozen = time_machine.travel(START + timedelta(days=3), tick=False)
    with frozen, runner.isolation() as (out, err, _):
        try:
            main([*args, "-c", str(project.config_path)])
        except SystemExit as exc:
            assert not exc.code, err.getvalue().decode()
        return out.getvalue().decode()


@pytest.mark.parametrize(
    "command",
    [
        ("runs",),
        ("show", "SHOWN"),
        ("schedules",),
        ("fires",),
        ("pipelines",),
        ("models",),
        ("models", "show", MODEL),
        ("token", "list"),
        ("next", "0 0 * * MON"),
        ("metrics", TRAINING),
    ],
)
def test_output_json_is_the_json_flag(world: World, command: tuple[str, ...]) -> None:
    args = [world.shown if arg == "SHOWN" else arg for arg in command]
    as_json = in_process(world.project, *args, "--json")
    assert json.loads(as_json)
    assert in_process(world.project, *args, "-o", "json") == as_json
