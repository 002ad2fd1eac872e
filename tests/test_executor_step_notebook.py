"""The notebook step through the real executor. Two kernel starts in all (they are slow): one
notebook that succeeds, one whose cell fails; the rest needs no kernel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.projects import Project, make_project
from tests.test_executor import execute, steps_of

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")


def log_of(detail, step: str) -> str:
    return Path(detail.latest_attempts()[step].log_path).read_text()


def notebook(*cells: str | tuple[str, list[str]]) -> str:
    nb = nbformat.v4.new_notebook()
    for cell in cells:
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        code = nbformat.v4.new_code_cell(source)
        code.metadata["tags"] = tags
        nb.cells.append(code)
    return nbformat.writes(nb)


def notebook_pipeline(project: Project, body: str, **fields) -> None:
    project.pipeline(
        "nb",
        {
            "parameters": {"alpha": {"type": "float", "default": 0.5}},
            "steps": {"analyse": {"type": "notebook", "notebook": "analyse.ipynb", **fields}},
        },
        {"analyse.ipynb": body},
    )


def test_notebook_runs_with_injected_parameters_and_keeps_the_executed_copy(tmp_path: Path):
    project = make_project(tmp_path)
    # A user's kernelspec named python3 that cannot start, and a HOME that does not exist: the
    # step must use ipykernel on pipesched's interpreter regardless.
    bogus = tmp_path / "jupyter" / "kernels" / "python3"
    bogus.mkdir(parents=True)
    (bogus / "kernel.json").write_text(
        json.dumps({"argv": ["/bin/false", "{connection_file}"], "display_name": "broken"})
    )
    body = notebook(
        "import os\nfrom scheduler.runtime import Run",
        ("alpha = 0.0\nlabel = 'default'", ["parameters"]),
        "Run.get_context().log('doubled', alpha * 2)\n"
        "open('outputs/label.txt', 'w').write(label)\n"
        "print('alpha is', repr(alpha), 'in', os.getcwd())",
    )
    notebook_pipeline(
        project,
        body,
        parameters={"alpha": "${{parameters.alpha}}", "label": "run ${{run.id}}"},
        environment={
            "variables": {"JUPYTER_PATH": str(tmp_path / "jupyter"), "HOME": "/nonexistent"}
        },
    )
    detail = execute(project, "nb", {"alpha": "1.25"})
    step = steps_of(detail)["analyse"]
    log = log_of(detail, "analyse")
    assert step["status"] == "completed", log
    assert step["metrics"] == {"doubled": 2.5}
    workdir = Path(detail.latest_attempts()["analyse"].workdir)
    assert f"alpha is 1.25 in {workdir}" in log
    assert (workdir / "outputs" / "label.txt").read_text() == f"run {detail.run.id}"
    executed = nbformat.read(workdir / "outputs" / "analyse.ipynb", as_version=4)
    injected = executed.cells[2]
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert "alpha = 1.25" in injected.source
    assert executed.cells[3].outputs[0]["text"].startswith("alpha is 1.25")


def test_a_failing_cell_fails_the_step_and_is_shown_in_its_log(tmp_path: Path):
    project = make_project(tmp_path)
    body = notebook("x = 1", "print('before the error')\nratio = x / 0", "print('never')")
    notebook_pipeline(project, body)
    detail = execute(project, "nb")
    step = steps_of(detail)["analyse"]
    log = log_of(detail, "analyse")
    assert step["status"] == "failed"
    assert "cell 2 (index 1) failed:" in log
    assert "    ratio = x / 0" in log  # the cell's source
    assert "ZeroDivisionError: division by zero" in log
    assert "Traceback" in log and "\x1b[" not in log  # the traceback, without colour codes
    executed = Path(detail.latest_attempts()["analyse"].workdir) / "outputs" / "analyse.ipynb"
    cells = nbformat.read(executed, as_version=4).cells
    assert cells[1].outputs[-1]["output_type"] == "error" and cells[2].outputs == []


def test_without_nbclient_the_step_says_what_to_install(tmp_path: Path):
    project = make_project(tmp_path)
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "nbclient.py").write_text("raise ImportError('hidden', name='nbclient')\n")
    notebook_pipeline(project, notebook("1"), environment={"variables": {"PYTHONPATH": str(hide)}})
    detail = execute(project, "nb")
    assert steps_of(detail)["analyse"]["status"] == "failed"
    assert "pip install 'pipesched[notebook]'" in log_of(detail, "analyse")


def test_parameters_go_after_the_tagged_cell_or_else_at_the_top():
    from scheduler.executor.runners.notebook import inject_parameters

    tagged = nbformat.reads(notebook("a", ("b", ["parameters"]), "c"), as_version=4)
    assert inject_parameters(tagged, {"n": 3}) == 2
    assert [c.source for c in tagged.cells][:2] == ["a", "b"]
    assert tagged.cells[2].source.endswith("n = 3")
    untagged = nbformat.reads(notebook("a"), as_version=4)
    assert inject_parameters(untagged, {"s": "x"}) == 0
    assert untagged.cells[0].source.endswith("s = 'x'")
    assert inject_parameters(untagged, {}) is None
