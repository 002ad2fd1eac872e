"""The classic Azure ML SDK v1 notebook, moved to pipesched by changing its imports and its
workspace: prepare → train joined by PipelineData, submitted, watched, metrics read back,
published, the published pipeline run over REST, a weekly schedule and a file-drop schedule
created from code — once embedded (a config file, no daemon for the first half) and once through a
real daemon's REST API (URL + token). Everything is real: the daemon, the HTTP server, the child
process that runs an embedded submit, the SQLite store, watchdog on a real folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_until
from tests.projects import Project, make_project

SCRIPTS = Path(__file__).parent / "sdk_notebook"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    # A fixed port, so the endpoint URL a published pipeline reports is the one the daemon serves.
    project = make_project(tmp_path / "home", api={"host": "127.0.0.1", "port": free_port()})
    scripts = tmp_path / "home" / "notebook" / "scripts"
    shutil.copytree(SCRIPTS, scripts)
    raw = project.datastore / "diabetes-data"
    raw.mkdir(parents=True)
    (raw / "a.csv").write_text("1,2\n3,4\n")
    (raw / "b.csv").write_text("5,6\n")
    return project


def token_for(project: Project) -> str:
    created = project.cli("token", "create", "notebook")
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def api_url(daemon) -> str:
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    return listening["url"]


def runs_json(project: Project) -> list[dict]:
    listed = project.cli("runs", "--json", "--limit", "0")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def next_monday_midnight(now: datetime) -> datetime:
    day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    while day.weekday() != 0:
        day += timedelta(days=1)
    return day


def build_training_pipeline(ws, scripts: Path):
    """The notebook's cells, as an Azure ML user writes them (only the imports changed)."""
    from scheduler.sdk import (
        ComputeTarget,
        Dataset,
        Pipeline,
        PipelineData,
        PipelineParameter,
        PythonScriptStep,
        RunConfiguration,
    )

    store = ws.get_default_datastore()
    cluster = ComputeTarget(ws, "local")
    run_config = RunConfiguration()
    raw = Dataset.File.from_files(path=(store, "diabetes-data"))
    prepped = PipelineData("prepped_data", datastore=store)
    reg = PipelineParameter(name="reg_rate", default_value=0.01)
    prep = PythonScriptStep(
        name="Prepare Data",
        source_directory=str(scripts),
        script_name="prep.py",
        arguments=[
            "--input-data",
            raw.as_named_input("raw_data").as_mount(),
            "--prepped-data",
            prepped,
        ],
        outputs=[prepped],
        compute_target=cluster,
        runconfig=run_config,
        allow_reuse=True,
    )
    train = PythonScriptStep(
        name="Train Model",
        source_directory=str(scripts),
        script_name="train.py",
        arguments=["--training-data", prepped, "--reg", reg],
        inputs=[prepped],
        compute_target=cluster,
        runconfig=run_config,
    )
    return Pipeline(workspace=ws, steps=[prep, train])


def build_scoring_pipeline(ws, scripts: Path):
    from scheduler.sdk import DataPath, Pipeline, PipelineParameter, PythonScriptStep

    store = ws.get_default_datastore()
    input_path = PipelineParameter(
        name="input_path", default_value=DataPath(datastore=store, path_on_datastore="inbox")
    )
    score = PythonScriptStep(
        name="Score",
        source_directory=str(scripts),
        script_name="score.py",
        arguments=["--input", input_path],
        compute_target="local",
    )
    return Pipeline(workspace=ws, steps=[score])


def submit_train_and_read_back(ws, scripts: Path, capsys) -> object:
    """Submit, wait with the step output shown, read the metrics back: the first cells."""
    from scheduler.sdk import Experiment

    pipeline = build_training_pipeline(ws, scripts)
    assert pipeline.validate() == []
    run = Experiment(ws, "diabetes-training").submit(
        pipeline, pipeline_parameters={"reg_rate": 0.05}
    )
    status = run.wait_for_completion(show_output=True, timeout_seconds=120)
    assert status == "Finished"
    shown = capsys.readouterr().out
    assert "prepared 3 rows from" in shown and "trained on 3 rows with reg 0.05" in shown
    (train_run,) = run.find_step_run("Train Model")
    assert train_run.get_metrics() == {"reg": 0.05, "accuracy": 0.95}
    assert run.get_metrics()["rows"] == 3
    assert [s.name for s in run.get_steps()] == ["Prepare Data", "Train Model"]
    return run


def publish_and_run_over_rest(ws, run, project: Project, url: str, token: str) -> str:
    published = run.publish_pipeline(
        name="diabetes-training", description="Prepare and train", version="1"
    )
    assert published.id == "diabetes-training@1"
    assert published.endpoint == (f"{url}/api/v1/pipelines/diabetes-training/versions/1/runs")
    # What an Azure ML REST client does with a published pipeline's endpoint.
    answer = requests.post(
        published.endpoint,
        headers={"Authorization": f"Bearer {token}"},
        json={"ExperimentName": "diabetes-training", "ParameterAssignments": {"reg_rate": 0.2}},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["Id"]
    wait_until(
        lambda: [r for r in runs_json(project) if r["id"] == run_id and r["status"] == "completed"],
        timeout=60,
    )
    return published.id


def schedule_weekly(ws, project: Project, pipeline_id: str) -> None:
    from scheduler.sdk import Schedule, ScheduleRecurrence

    recurrence = ScheduleRecurrence(
        frequency="Week", interval=1, week_days=["Monday"], time_of_day="00:00"
    )
    schedule = Schedule.create(
        ws,
        name="weekly-diabetes",
        pipeline_id=pipeline_id,
        experiment_name="diabetes-training",
        recurrence=recurrence,
    )
    assert schedule.status == "Active"
    # Read back as a notebook in another session would: the recurrence comes from the store.
    fetched = Schedule.get(ws, "weekly-diabetes")
    assert fetched.recurrence.week_days == ["Monday"]
    assert fetched.recurrence.time_of_day == "00:00"


def check_weekly_listed(project: Project) -> None:
    listed = {s["name"]: s for s in json.loads(project.cli("schedules", "--json").stdout)}
    weekly = listed["weekly-diabetes"]
    assert weekly["source"] == "api" and weekly["kind"] == "recurrence"
    first = datetime.fromisoformat(weekly["next_fire_times"][0])
    assert first == next_monday_midnight(datetime.now(UTC))


def schedule_file_drop_and_drop(ws, project: Project, scripts: Path) -> None:
    from scheduler.sdk import Schedule

    published = build_scoring_pipeline(ws, scripts).publish(
        name="batch-scoring", description="Score dropped files", version="1"
    )
    Schedule.create(
        ws,
        name="score-drops",
        pipeline_id=published.id,
        experiment_name="scoring",
        datastore=ws.get_default_datastore(),
        path_on_datastore="inbox",
        data_path_parameter_name="input_path",
    )
    inbox = project.datastore / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    part = inbox / "batch-1.csv.part"
    part.write_text("x\ny\n")
    os.replace(part, inbox / "batch-1.csv")
    (scored,) = wait_until(
        lambda: [
            r
            for r in runs_json(project)
            if r["trigger"] == "file:inbox/batch-1.csv" and r["status"] == "completed"
        ],
        timeout=60,
    )
    assert scored["schedule"] == "score-drops" and scored["version"] == "1"
    assert scored["experiment"] == "scoring"


@pytest.mark.slow
def test_the_notebook_runs_embedded(project: Project, daemons, capsys):
    from scheduler.sdk import Workspace

    scripts = project.root / "notebook" / "scripts"
    ws = Workspace.from_config(path=str(project.config_path))
    # No daemon yet: the run goes to a child process and is read back from the store.
    run = submit_train_and_read_back(ws, scripts, capsys)
    (listed,) = [r for r in runs_json(project) if r["id"] == run.id]
    assert listed["trigger"] == "manual" and listed["experiment"] == "diabetes-training"
    daemon = daemons(project).start()
    url, token = api_url(daemon), token_for(project)
    pipeline_id = publish_and_run_over_rest(ws, run, project, url, token)
    # A daemon is running on this config: the schedule reaches it at once, without a restart.
    schedule_weekly(ws, project, pipeline_id)
    check_weekly_listed(project)
    schedule_file_drop_and_drop(ws, project, scripts)
    daemon.stop()
    # The SDK's schedules survive a restart.
    daemons(project).start()
    check_weekly_listed(project)


def test_the_notebook_runs_through_the_daemon(project: Project, daemons, capsys):
    from scheduler.sdk import Workspace

    scripts = project.root / "notebook" / "scripts"
    daemon = daemons(project).start()
    url, token = api_url(daemon), token_for(project)
    ws = Workspace(url=url, token=token)
    run = submit_train_and_read_back(ws, scripts, capsys)
    (listed,) = [r for r in runs_json(project) if r["id"] == run.id]
    assert listed["trigger"] == "api" and listed["experiment"] == "diabetes-training"
    pipeline_id = publish_and_run_over_rest(ws, run, project, url, token)
    schedule_weekly(ws, project, pipeline_id)
    check_weekly_listed(project)
    schedule_file_drop_and_drop(ws, project, scripts)


def test_a_saved_pipeline_runs_identically_from_yaml(project: Project, capsys):
    from scheduler.sdk import Workspace

    scripts = project.root / "notebook" / "scripts"
    ws = Workspace.from_config(path=str(project.config_path))
    pipeline = build_training_pipeline(ws, scripts)
    run = submit_train_and_read_back(ws, scripts, capsys)
    pipeline.save(project.root / "pipelines" / "diabetes-sdk")
    assert project.cli("validate").returncode == 0
    # The same definition: the YAML run finds the SDK run's steps by fingerprint and reuses them.
    reused = project.cli("run", "diabetes-sdk", "-p", "reg_rate=0.05", "--json")
    assert reused.returncode == 0, reused.stderr
    from_sdk = run.get_details()
    assert [(s["status"], s["reused_from"]) for s in json.loads(reused.stdout)["steps"]] == [
        ("reused", from_sdk["runId"]),
        ("reused", from_sdk["runId"]),
    ]
    # Run afresh, it computes the same metrics and outputs.
    ran = project.cli(
        "run", "diabetes-sdk", "-p", "reg_rate=0.05", "--regenerate-outputs", "--json"
    )
    assert ran.returncode == 0, ran.stderr
    from_yaml = json.loads(ran.stdout)
    assert [s["display_name"] for s in from_yaml["steps"]] == ["Prepare Data", "Train Model"]
    assert {s["name"]: s["metrics"] for s in from_yaml["steps"]} == {
        s["name"]: s["metrics"] for s in from_sdk["steps"]
    }
    assert from_yaml["parameters"] == from_sdk["parameters"]
    yaml_out = Path(from_yaml["steps"][0]["outputs"]["prepped_data"]) / "prepped.csv"
    sdk_out = Path(from_sdk["steps"][0]["outputs"]["prepped_data"]) / "prepped.csv"
    assert yaml_out.read_text() == sdk_out.read_text()
