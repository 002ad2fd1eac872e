"""Publishing a run that has not finished, and a step's outputs as Azure ML's StepRunOutput and
PortDataReference, as notebooks use them: on an embedded workspace (a real SQLite store in
tmp_path, runs in real child processes) and through a real daemon's REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.sdk import (
    Datastore,
    Experiment,
    Pipeline,
    PipelineData,
    PipelineParameter,
    PortDataReference,
    PythonScriptStep,
    StepRunOutput,
    Workspace,
)
from scheduler.sdk._warn import SdkError
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

SCRIPTS = {
    "gate/wait_for_gate.py": """
        import argparse, pathlib, time
        parser = argparse.ArgumentParser()
        parser.add_argument("--gate")
        gate = pathlib.Path(parser.parse_args().gate)
        deadline = time.monotonic() + 60
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        print("gate open" if gate.exists() else "gate never opened", flush=True)
        raise SystemExit(0 if gate.exists() else 1)
    """,
    "rows/write_rows.py": """
        import argparse, pathlib
        parser = argparse.ArgumentParser()
        parser.add_argument("--out")
        out = pathlib.Path(parser.parse_args().out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rows.csv").write_text("a\\nb\\nc\\n")
    """,
    "count/count_rows.py": """
        import argparse, pathlib
        from scheduler.runtime import Run
        parser = argparse.ArgumentParser()
        parser.add_argument("--rows")
        rows = (pathlib.Path(parser.parse_args().rows) / "rows.csv").read_text().split()
        Run.get_context().log("rows", len(rows))
    """,
}


def _project(root: Path) -> Project:
    project = make_project(
        root, datastores={"default": {"path": None}, "blobstore": {"path": "../blob"}}
    )
    for name, body in SCRIPTS.items():
        path = project.root / "sources" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(line[8:] for line in body.splitlines()))
    return project


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Workspace]:
    project = _project(tmp_path_factory.mktemp("outputs-embedded"))
    return project, Workspace(config=project.config_path)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Workspace]]:
    project = _project(tmp_path_factory.mktemp("outputs-remote"))
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        created = project.cli("token", "create", "outputs")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        yield project, Workspace(url=listening["url"], token=token)
    finally:
        daemon.close()


@pytest.fixture(params=["embedded", "remote"])
def workspace(request: pytest.FixtureRequest) -> tuple[Project, Workspace]:
    return request.getfixturevalue(request.param)


def _mode(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["workspace"])


def _source(project: Project, folder: str) -> str:
    return str(project.root / "sources" / folder)


def _rows_pipeline(project: Project, ws: Workspace) -> Pipeline:
    rows = PipelineData("rows", datastore=Datastore(ws, "blobstore"))
    write = PythonScriptStep(
        name="write rows",
        script_name="write_rows.py",
        source_directory=_source(project, "rows"),
        arguments=["--out", rows],
        outputs=[rows],
    )
    return Pipeline(workspace=ws, steps=[write])


def test_a_running_run_publishes_what_it_runs(workspace, request, tmp_path: Path):
    project, ws = workspace
    gate = PipelineParameter("gate", default_value=str(tmp_path / "never"))
    step = PythonScriptStep(
        name="wait",
        script_name="wait_for_gate.py",
        source_directory=_source(project, "gate"),
        arguments=["--gate", gate],
        allow_reuse=False,
    )
    opened = tmp_path / "open"
    run = Experiment(ws, "publish-early").submit(
        Pipeline(workspace=ws, steps=[step]), pipeline_parameters={"gate": str(opened)}
    )
    wait_until(lambda: run.get_status() == "Running", timeout=30)

    name = f"published-early-{_mode(request)}"
    published = run.publish_pipeline(name=name, description="before the end", version="1")

    assert published.id == f"{name}@1" and published.description == "before the end"
    assert run.get_status() == "Running"  # the gate is still closed
    opened.touch()
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    again = published.submit(ws, "publish-early", pipeline_parameters={"gate": str(opened)})
    assert again.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert again.get_details()["pipeline"] == name and again.get_details()["version"] == "1"


def test_step_outputs_name_the_datastore_that_holds_them(workspace):
    project, ws = workspace
    run = Experiment(ws, "outputs").submit(_rows_pipeline(project, ws))
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    (step,) = run.find_step_run("write rows")

    outputs = step.get_outputs()

    assert list(outputs) == ["rows"]
    output = outputs["rows"]
    assert isinstance(output, StepRunOutput) and output.pipeline_run_id == run.id
    reference = output.get_port_data_reference()
    assert isinstance(reference, PortDataReference)
    assert reference.datastore_name == "blobstore"
    # reuse may hand back an earlier run's folder: the step says which run wrote it
    writer = step.get_details()["reused_from"] or run.id
    assert reference.path_on_datastore == f".pipesched/outputs/{writer}/write-rows/rows"
    landed = project.root / "blob" / reference.path_on_datastore / "rows.csv"
    assert landed.read_text() == "a\nb\nc\n"
    assert step.get_output("rows").datastore_name == "blobstore"
    assert step.get_output_data("rows").path_on_datastore == reference.path_on_datastore


def test_a_port_data_reference_is_the_input_of_another_pipeline(workspace):
    project, ws = workspace
    first = Experiment(ws, "outputs").submit(_rows_pipeline(project, ws))
    assert first.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    (step,) = first.find_step_run("write rows")
    rows = step.get_output("rows").get_port_data_reference()

    count = PythonScriptStep(
        name="count rows",
        script_name="count_rows.py",
        source_directory=_source(project, "count"),
        arguments=["--rows", rows.as_mount()],
        inputs=[rows],
    )
    second = Experiment(ws, "count").submit(Pipeline(workspace=ws, steps=[count]))

    assert second.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert second.get_metrics() == {"rows": 3}
    expected = f"datastore://blobstore/{rows.path_on_datastore}"
    assert second.get_details()["parameters"] == {"rows": expected}


def test_an_embedded_output_downloads_a_copy(embedded, tmp_path: Path):
    project, ws = embedded
    run = Experiment(ws, "outputs").submit(_rows_pipeline(project, ws))
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    (step,) = run.find_step_run("write rows")
    reference = step.get_outputs()["rows"].get_port_data_reference()

    copied = Path(reference.download(local_path=str(tmp_path)))

    assert copied == tmp_path / reference.path_on_datastore
    assert (copied / "rows.csv").read_text() == "a\nb\nc\n"
    with pytest.raises(SdkError, match="exists"):
        reference.download(local_path=str(tmp_path))


def test_a_daemon_output_downloads_from_its_own_datastore(remote, tmp_path: Path):
    project, ws = remote
    run = Experiment(ws, "outputs").submit(_rows_pipeline(project, ws))
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    (step,) = run.find_step_run("write rows")
    reference = step.get_outputs()["rows"].get_port_data_reference()
    local = Path(reference.download(local_path=str(tmp_path), show_progress=False))
    on_daemon = project.root / "blob" / reference.path_on_datastore
    copied = {p.relative_to(local): p.read_bytes() for p in local.rglob("*") if p.is_file()}
    there = {p.relative_to(on_daemon): p.read_bytes() for p in on_daemon.rglob("*") if p.is_file()}
    assert copied and copied == there
