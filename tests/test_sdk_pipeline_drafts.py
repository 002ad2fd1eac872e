"""Azure ML's ``PipelineDraft`` as the drafts notebook uses it (create, list by tag, get,
update, submit_run, publish) and the ways Azure makes one from a run, a published pipeline or
another draft: on an embedded workspace (a real SQLite store in tmp_path, runs in real child
processes) and through a real daemon's REST API (``/api/v1/drafts``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.core.errors import NotFound, ParameterError
from scheduler.sdk import (
    Experiment,
    Pipeline,
    PipelineDraft,
    PipelineParameter,
    PublishedPipeline,
    PythonScriptStep,
    Workspace,
)
from scheduler.sdk._warn import SdkError
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

SAY = """\
import argparse
from scheduler.runtime import Run
parser = argparse.ArgumentParser()
parser.add_argument("--word", default="none")
word = parser.parse_args().word
Run.get_context().log("word", word)
print("said", word, flush=True)
"""


def _project(root: Path) -> Project:
    project = make_project(root)
    folder = project.root / "say"
    folder.mkdir()
    (folder / "say.py").write_text(SAY)
    return project


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Workspace]:
    project = _project(tmp_path_factory.mktemp("drafts-embedded"))
    return project, Workspace(config=project.config_path)


@pytest.fixture(scope="module")
def remote(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Project, Workspace, str, str]]:
    project = _project(tmp_path_factory.mktemp("drafts-remote"))
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        created = project.cli("token", "create", "drafts")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        yield project, Workspace(url=listening["url"], token=token), listening["url"], token
    finally:
        daemon.close()


@pytest.fixture(params=["embedded", "remote"])
def workspace(request: pytest.FixtureRequest) -> tuple[Project, Workspace]:
    chosen = request.getfixturevalue(request.param)
    return chosen[0], chosen[1]


def _mode(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["workspace"])


def _say(project: Project, ws: Workspace, step_name: str, word: object = "hello") -> Pipeline:
    step = PythonScriptStep(
        name=step_name,
        script_name="say.py",
        source_directory=str(project.root / "say"),
        arguments=["--word", word],
    )
    return Pipeline(workspace=ws, steps=[step])


def test_the_drafts_notebook_flow(workspace, request):
    project, ws = workspace
    tag = {"dev": _mode(request)}
    pipeline = _say(project, ws, "Training_Step")
    draft = PipelineDraft.create(
        ws,
        name=f"TestPipelineDraft-{_mode(request)}",
        description="draft description",
        experiment_name="helloworld",
        pipeline=pipeline,
        continue_on_step_failure=True,
        tags=tag,
        properties={"train": "value"},
    )
    created_id = draft.id

    assert [d.id for d in PipelineDraft.list(ws, tags=tag)] == [created_id]
    found = PipelineDraft.get(ws, id=created_id)
    assert found.name == f"TestPipelineDraft-{_mode(request)}"
    assert found.description == "draft description"
    assert found.properties == {"train": "value"} and found.tags == tag
    assert found.continue_on_step_failure is True
    assert f"Id: {created_id}" in str(found)

    new_pipeline = _say(project, ws, "New_Training_Step")
    updated = f"UpdatedPipelineDraft-{_mode(request)}"
    found.update(name=updated, description="has updated train step", pipeline=new_pipeline)
    assert (found.name, found.description) == (updated, "has updated train step")

    run = found.submit_run()
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert [s.name for s in run.get_steps()] == ["New_Training_Step"]
    assert run.experiment.name == "helloworld"
    assert run.get_details()["experiment"] == "helloworld"
    assert PipelineDraft.get(ws, created_id).last_submitted_pipeline_run_id == run.id

    published = found.publish()
    assert published.name == updated and published.version == "1"
    assert published.description == "has updated train step"
    again = published.submit(ws, "helloworld")
    assert again.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert found.publish().version == "2"  # a draft stays, to be published again

    found.delete()
    with pytest.raises(NotFound, match="no pipeline draft"):
        PipelineDraft.get(ws, created_id)


def test_a_draft_keeps_the_pipeline_it_was_given(workspace, request):
    """Changing the notebook's Pipeline after create changes nothing until update()."""
    project, ws = workspace
    source = project.root / "say" / "say.py"
    pipeline = _say(project, ws, "keep")
    draft = PipelineDraft.create(
        ws, pipeline, name=f"keeper-{_mode(request)}", experiment_name="keep"
    )
    edited = source.read_text()
    try:
        source.write_text(edited.replace('"said"', '"changed"'))
        run = draft.submit_run()
        assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
        (step,) = run.get_steps()
        assert "said hello" in step.get_job_log()
    finally:
        source.write_text(edited)


def test_parameter_values_are_checked_when_the_draft_is_made(workspace, request):
    project, ws = workspace
    word = PipelineParameter("word", default_value="hello")
    pipeline = _say(project, ws, "speak", word)
    with pytest.raises(ParameterError, match="unknown parameter 'wrod'") as caught:
        PipelineDraft.create(
            ws,
            pipeline,
            name=f"typo-{_mode(request)}",
            experiment_name="speak",
            pipeline_parameters={"wrod": "x"},
        )
    assert caught.value.name == "wrod"

    draft = PipelineDraft.create(
        ws,
        pipeline,
        name=f"speaker-{_mode(request)}",
        experiment_name="speak",
        pipeline_parameters={"word": "bonjour"},
    )
    run = draft.submit_run()
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert run.get_metrics() == {"word": "bonjour"}
    draft.update(pipeline_parameters={"word": "hola"})
    again = Experiment(ws, "speak-elsewhere").submit(draft)
    assert again.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert again.get_metrics() == {"word": "hola"}
    assert again.get_details()["experiment"] == "speak-elsewhere"
    assert PipelineDraft.get(ws, draft.id).experiment_name == "speak-elsewhere"


def test_drafts_of_a_run_a_published_pipeline_and_a_draft(workspace, request):
    project, ws = workspace
    word = PipelineParameter("word", default_value="hello")
    run = Experiment(ws, "origins").submit(
        _say(project, ws, "origin", word), pipeline_parameters={"word": "from-run"}
    )
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"

    of_run = PipelineDraft.create(ws, run)
    assert of_run.parent_pipeline_run_id == run.id
    assert of_run.experiment_name == "origins"
    assert of_run.pipeline_parameters == {"word": "from-run"}
    rerun = of_run.submit_run()
    assert rerun.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert rerun.get_details()["parameters"] == {"word": "from-run"}
    assert rerun.get_details()["steps"][0]["reused_from"] == run.id  # the very same step

    published = run.publish_pipeline(
        name=f"origins-{_mode(request)}", description="published", version="1"
    )
    of_published = PipelineDraft.create(ws, PublishedPipeline.get(ws, published.id))
    assert of_published.parent_pipeline_id == published.id
    assert of_published.description == "published"

    copy = PipelineDraft.create(ws, of_run)
    assert copy.parent_pipeline_draft_id == of_run.id and copy.id != of_run.id
    assert copy.pipeline_parameters == {"word": "from-run"}


def test_create_from_a_pipeline_needs_a_name_and_an_experiment(embedded):
    project, ws = embedded
    with pytest.raises(SdkError, match="name can not be None"):
        PipelineDraft.create(ws, _say(project, ws, "x"), experiment_name="e")
    with pytest.raises(SdkError, match="experiment_name can not be None"):
        PipelineDraft.create(ws, _say(project, ws, "x"), name="n")
    with pytest.raises(SdkError, match="should be of type Pipeline"):
        PipelineDraft.create(ws, "not a pipeline")


def test_the_rest_api_names_a_bad_draft_parameter(remote):
    project, ws, url, token = remote
    draft = PipelineDraft.create(
        ws,
        _say(project, ws, "rest", PipelineParameter("word", default_value="hi")),
        name="rest-draft",
        experiment_name="rest",
    )
    request = urllib.request.Request(
        f"{url}/api/v1/drafts/{draft.id}",
        data=json.dumps({"pipeline_parameters": {"nope": 1}}).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 422
    (problem,) = json.loads(answer.value.read())["detail"]
    assert problem["loc"] == ["body", "pipeline_parameters", "nope"]
    assert PipelineDraft.get(ws, draft.id).pipeline_parameters == {}
