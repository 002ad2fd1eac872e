"""``pipesched models``, ``pipesched models show NAME[:VERSION]`` and the models in ``pipesched
show RUN``, through the real command in a subprocess, after a real foreground run whose step
registered a model with ``run.register_model``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.model_projects import model_project
from tests.projects import Project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Two runs of train-and-score: diabetes-model versions 1 and 2."""
    project = model_project(tmp_path_factory.mktemp("cli-models"))
    for reg in ("0.5", "0.75"):
        result = project.cli("run", "train-and-score", "-p", f"reg={reg}", "--json")
        assert result.returncode == 0, result.stderr
    return project


def run_ids(project: Project) -> list[str]:
    runs = json.loads(project.cli("runs", "--json").stdout)
    return [run["id"] for run in reversed(runs)]  # oldest first


def test_models_lists_every_version_with_its_run_and_step(project: Project):
    result = project.cli("models", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    first, second = run_ids(project)
    assert [(m["name"], m["version"], m["run_id"], m["step"]) for m in listed] == [
        ("diabetes-model", 2, second, "train"),
        ("diabetes-model", 1, first, "train"),
    ]
    assert set(listed[0]) == {
        "name",
        "version",
        "path",
        "run_id",
        "step",
        "tags",
        "properties",
        "description",
        "created_at",
    }
    assert listed[1]["tags"] == {"area": "diabetes", "reg": 0.5}
    assert Path(listed[1]["path"]).read_text() == "ridge reg=0.5"


def test_models_table_shows_name_version_run_step_and_tags(project: Project):
    result = project.cli("models")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "CREATED", "RUN", "STEP", "TAGS", "DESCRIPTION"]
    first, second = run_ids(project)
    assert len(rows) == 2
    assert rows[0].startswith("diabetes-model  2") and second in rows[0]
    assert "train" in rows[0] and "area=diabetes, reg=0.75" in rows[0]
    assert first in rows[1] and "Ridge regression" in rows[1]


def test_models_filters_by_tag_and_keeps_the_latest(project: Project):
    by_tag = json.loads(project.cli("models", "--json", "--tag", "reg=0.5").stdout)
    assert [m["version"] for m in by_tag] == [1]
    latest = json.loads(project.cli("models", "--json", "--latest").stdout)
    assert [m["version"] for m in latest] == [2]
    assert json.loads(project.cli("models", "--json", "--name", "other").stdout) == []


def test_models_show_gives_the_latest_or_the_named_version(project: Project):
    latest = project.cli("models", "show", "diabetes-model", "--json")
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout)["version"] == 2
    first = json.loads(project.cli("models", "show", "diabetes-model:1", "--json").stdout)
    assert (first["version"], first["tags"]["reg"]) == (1, 0.5)
    page = project.cli("models", "show", "diabetes-model:1")
    assert page.returncode == 0, page.stderr
    lines = page.stdout.splitlines()
    assert lines[0].split() == ["Model", "diabetes-model:1"]
    assert any(line.split()[:2] == ["Run", run_ids(project)[0]] for line in lines)
    assert "(step train)" in page.stdout and "Ridge regression" in page.stdout
    assert "model.pkl  13 bytes" in page.stdout


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("ghost", "error: no model named 'ghost'"),
        ("diabetes-model:9", "error: model 'diabetes-model' has no version 9 (versions: 1, 2)"),
        ("diabetes-model:x", "error: 'diabetes-model:x': a model's version is a number from 1"),
    ],
)
def test_models_show_of_what_is_not_there_is_one_line_and_exit_1(project, ref, message):
    result = project.cli("models", "show", ref)
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_show_lists_the_models_a_run_registered(project: Project):
    first, _ = run_ids(project)
    page = project.cli("show", first)
    assert page.returncode == 0, page.stderr
    lines = page.stdout.splitlines()
    models = lines.index("Models")
    assert lines[models + 1].split()[:2] == ["diabetes-model:1", "train"]
    shown = json.loads(project.cli("show", first, "--json").stdout)
    assert [(m["name"], m["version"], m["step"]) for m in shown["models"]] == [
        ("diabetes-model", 1, "train")
    ]


def test_show_of_a_run_without_models_has_an_empty_list(project: Project):
    result = project.cli("run", "train-only", "--json")
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["id"]
    assert json.loads(project.cli("show", run_id, "--json").stdout)["models"] == []
    assert "Models" not in project.cli("show", run_id).stdout.splitlines()


def test_models_is_in_the_help(project: Project):
    words = " ".join(project.cli("--help").stdout.split())
    assert "models Registered models: versions, tags, the run and step of each." in words
