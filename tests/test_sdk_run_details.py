"""``RunDetails(run).show()`` where an Azure ML notebook calls it: in a plain script (progress
lines, returning when the run ends), in a real Jupyter kernel (HTML, or an ipywidgets widget,
updated in place by a background thread while the cell has long returned), and through a real
daemon (the log is the daemon's URL of it). Pipelines are built with the SDK as a notebook
builds them, and run for real: embedded in a child process, or by the daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from scheduler.sdk import Experiment, Pipeline, PythonScriptStep, RunDetails, Workspace
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

REPO = Path(__file__).resolve().parents[1]

SCRIPTS = {
    # Holds its step (and so the run) until the test opens the gate.
    "gate.py": """
        import argparse, os, time
        parser = argparse.ArgumentParser()
        parser.add_argument("--gate")
        gate = parser.parse_args().gate
        print("waiting for the gate", flush=True)
        deadline = time.monotonic() + 120
        while not os.path.exists(gate):
            if time.monotonic() > deadline:
                raise SystemExit("the gate never opened")
            time.sleep(0.05)
        print("the gate is open", flush=True)
    """,
    "train.py": """
        from scheduler.runtime import Run
        Run.get_context().log("accuracy", 0.9)
        print("trained", flush=True)
    """,
    "boom.py": """
        print("about to fail", flush=True)
        raise SystemExit("boom")
    """,
}

# The notebook's cells up to the submit, as an Azure ML user writes them (imports changed).
SUBMIT = """
from scheduler.sdk import Experiment, Pipeline, PythonScriptStep, RunDetails, Workspace

ws = Workspace.from_config(path={config!r})
wait = PythonScriptStep(name="Wait for data", script_name="gate.py", arguments=["--gate", {gate!r}],
                        source_directory={scripts!r}, compute_target="local", allow_reuse=False)
train = PythonScriptStep(name="Train Model", script_name="train.py",
                         source_directory={scripts!r}, compute_target="local", allow_reuse=False)
train.run_after(wait)
run = Experiment(ws, "run-details").submit(Pipeline(workspace=ws, steps=[wait, train]))
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path / "home")
    scripts = project.root / "scripts"
    scripts.mkdir()
    for name, body in SCRIPTS.items():
        (scripts / name).write_text(textwrap.dedent(body))
    return project


def submit_cell(project: Project, gate: Path) -> str:
    return SUBMIT.format(
        config=str(project.config_path), gate=str(gate), scripts=str(project.root / "scripts")
    )


def child_env() -> dict[str, str]:
    """The test's environment, with this checkout importable (as the test process has it)."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


# -- a plain script -------------------------------------------------------------------------


def test_a_script_prints_a_line_per_step_change_and_returns_when_the_run_ends(
    project: Project, tmp_path: Path
):
    gate = tmp_path / "gate"
    script = tmp_path / "notebook_as_script.py"
    script.write_text(
        submit_cell(project, gate)
        + "RunDetails(run).show()\n"
        + "import sys\n"
        + "print('show returned:', run.get_status())\n"
        + "print('IPython imported:', 'IPython' in sys.modules)\n"
    )
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("wb") as sink, err.open("wb") as errors:
        proc = subprocess.Popen(
            [sys.executable, str(script)], stdout=sink, stderr=errors, env=child_env(), cwd=tmp_path
        )
        try:
            wait_until(
                lambda: "StepRun( Wait for data ) Status: Running" in out.read_text(),
                timeout=60,
                message="the gated step's Running line",
            )
            # The run is held at its gate: show() has not returned.
            assert "show returned" not in out.read_text()
            gate.touch()
            assert proc.wait(timeout=60) == 0, out.read_text() + err.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = out.read_text().splitlines()
    run_id = lines[0].removeprefix("PipelineRunId: ")
    logs = project.state_dir / "runs" / run_id
    wait_log = logs / "wait-for-data" / "1.log"
    train_log = logs / "train-model" / "1.log"
    # Each step's Running line names its log; a line per change, in the order they happened.
    assert lines[1] == "PipelineRun Status: Running"
    assert lines[2] == f"StepRun( Wait for data ) Status: Running; log: {wait_log}"
    assert lines[3].startswith("StepRun( Wait for data ) Status: Finished in ")
    train_lines = [line for line in lines[4:] if "Train Model" in line]
    assert train_lines[-1].startswith("StepRun( Train Model ) Status: Finished in ")
    assert f"log: {train_log}" in "\n".join(train_lines)
    assert lines[-3].startswith("PipelineRun Status: Finished in ")
    assert lines[-2:] == ["show returned: Finished", "IPython imported: False"]
    assert "the gate is open" in wait_log.read_text()
    assert "trained" in train_log.read_text()


def test_a_failed_step_shows_failed_with_its_log_and_show_does_not_raise(project: Project, capsys):
    ws = Workspace.from_config(path=str(project.config_path))
    boom = PythonScriptStep(
        name="Boom",
        script_name="boom.py",
        source_directory=str(project.root / "scripts"),
        compute_target="local",
    )
    run = Experiment(ws, "run-details").submit(Pipeline(workspace=ws, steps=[boom]))
    RunDetails(run).show()
    lines = capsys.readouterr().out.splitlines()
    log = project.state_dir / "runs" / run.id / "boom" / "1.log"
    (failed,) = [line for line in lines if line.startswith("StepRun( Boom ) Status: Failed in ")]
    assert failed.endswith(f"; log: {log}")
    assert "about to fail" in log.read_text()
    assert lines[-1].startswith("PipelineRun Status: Failed in ")
    assert run.get_status() == "Failed"


def test_render_lib_receives_the_html_until_the_run_ends(project: Project, tmp_path: Path):
    gate = tmp_path / "gate"
    gate.touch()
    namespace: dict = {}
    exec(submit_cell(project, gate), namespace)
    run = namespace["run"]
    pages: list[str] = []
    RunDetails(run).show(render_lib=pages.append)
    assert run.get_status() == "Finished"
    assert "<b style='color:#15803d'>Finished</b>" in pages[-1] and "ended" in pages[-1]
    assert "Wait for data" in pages[-1] and "Train Model" in pages[-1]
    assert all("ended" not in page for page in pages[:-1])


# -- a Jupyter kernel ------------------------------------------------------------------------


def run_notebook(cells: list[str], cwd: Path):
    """Execute ``cells`` in a real ipykernel (on this interpreter) as Jupyter does; the
    executed notebook, with its outputs and widget state."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(cell)) for cell in cells]
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute(env={**child_env(), "IPYTHONDIR": str(cwd / "ipython")})
    return nb


def text_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_in_jupyter_without_ipywidgets_the_html_updates_in_place_and_the_cell_returns(
    project: Project, tmp_path: Path
):
    gate = tmp_path / "gate"
    nb = run_notebook(
        [
            "import sys\nsys.modules['ipywidgets'] = None  # as if ipywidgets were not installed",
            submit_cell(project, gate) + "details = RunDetails(run)\ndetails.show()",
            "print(run.get_status())",
            f"""
            open({str(gate)!r}, "w").close()
            details._refresher.join(60)
            print(details._refresher.is_alive(), run.get_status())
            """,
        ],
        tmp_path,
    )
    # show() returned while the run was held at its gate: the next cell ran meanwhile.
    assert text_of(nb.cells[2]).strip() in ("NotStarted", "Running")
    assert text_of(nb.cells[3]).split() == ["False", "Finished"]
    (shown,) = [o for o in nb.cells[1].outputs if o.output_type == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" not in shown.data
    page = shown.data["text/html"]  # the display, as updated by the background thread
    run_id = page.split("<code>")[1].split("</code>")[0]
    assert page.count("<b style='color:#15803d'>Finished</b>") == 3  # the run and both steps
    assert "<i>ended</i>" in page
    for step in ("wait-for-data", "train-model"):
        assert f"<code>{project.state_dir / 'runs' / run_id / step / '1.log'}</code>" in page


@pytest.mark.slow
def test_in_jupyter_with_ipywidgets_a_widget_follows_the_run_until_closed_or_ended(
    project: Project, tmp_path: Path
):
    pytest.importorskip("ipywidgets")
    first_gate, second_gate = tmp_path / "first-gate", tmp_path / "second-gate"
    nb = run_notebook(
        [
            submit_cell(project, first_gate) + "closed = RunDetails(run)\nclosed.show()",
            """
            closed.widget_instance.close()
            closed._refresher.join(30)
            print(closed._refresher.is_alive(), run.get_status())
            """,
            submit_cell(project, second_gate) + "details = RunDetails(run)\ndetails.show()",
            "print(run.get_status())",
            f"""
            open({str(first_gate)!r}, "w").close()
            open({str(second_gate)!r}, "w").close()
            details._refresher.join(60)
            print(details._refresher.is_alive(), run.get_status())
            """,
        ],
        tmp_path,
    )
    # Closing the widget stops its thread while the run goes on.
    assert text_of(nb.cells[1]).split() in (["False", "NotStarted"], ["False", "Running"])
    assert text_of(nb.cells[3]).strip() in ("NotStarted", "Running")
    assert text_of(nb.cells[4]).split() == ["False", "Finished"]
    (view,) = [o for o in nb.cells[2].outputs if o.output_type == "display_data"]
    model = view.data["application/vnd.jupyter.widget-view+json"]["model_id"]
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    page = state[model]["state"]["value"]
    assert state[model]["model_name"] == "HTMLModel"
    assert page.count("<b style='color:#15803d'>Finished</b>") == 3
    assert "<i>ended</i>" in page


# -- through a daemon ------------------------------------------------------------------------


def test_through_a_daemon_the_log_is_the_daemons_url_of_it(project: Project, capsys):
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        created = project.cli("token", "create", "run-details")
        assert created.returncode == 0, created.stderr
        url, token = listening["url"], created.stdout.strip().splitlines()[-1]
        ws = Workspace(url=url, token=token)
        train = PythonScriptStep(
            name="Train Model",
            script_name="train.py",
            source_directory=str(project.root / "scripts"),
            compute_target="local",
        )
        run = Experiment(ws, "run-details").submit(Pipeline(workspace=ws, steps=[train]))
        RunDetails(run).show()
        assert run.get_status() == "Finished"
        lines = capsys.readouterr().out.splitlines()
        log_url = f"{url}/api/v1/runs/{run.id}/steps/train-model/logs"
        assert any(line.startswith("StepRun( Train Model ) Status: Finished in ") for line in lines)
        assert log_url in "\n".join(lines)
        assert lines[-1].startswith("PipelineRun Status: Finished in ")
        answer = requests.get(log_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert answer.status_code == 200 and "trained" in answer.text

        # A step run shows that step alone, from the daemon too.
        (step_run,) = run.get_steps()
        RunDetails(step_run).show()
        step_lines = capsys.readouterr().out.splitlines()
        assert step_lines[0] == f"StepRunId: {run.id}/train-model"
        assert step_lines[1].startswith("StepRun( Train Model ) Status: Finished in ")
        assert step_lines[1].endswith(f"; log: {log_url}")
        data = RunDetails(step_run).get_widget_data()
        assert [(s["name"], s["status"], s["log"]) for s in data["steps"]] == [
            ("Train Model", "Finished", log_url)
        ]
        assert json.loads(json.dumps(data)) == data  # plain data, as Azure's debugging aid
    finally:
        daemon.close()
