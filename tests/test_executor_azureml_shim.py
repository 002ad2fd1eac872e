"""Step scripts written for Azure ML SDK v1 (``from azureml.core import Run``,
``Model.get_model_path``, ``from azureml_user.parallel_run import EntryScript``) run unchanged:
real executor, real step processes, on pipesched's interpreter and on a bare venv that has
neither pipesched nor azureml. A real azureml in the step's environment always wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scheduler.executor.workdir import runtime_shim
from tests.projects import REPO, Project, make_project
from tests.test_executor import execute, steps_of

STEPS = Path(__file__).parent / "azureml_steps"
OWN, BARE_VENV = "pipesched's interpreter", "a bare venv"


def step_script(name: str) -> str:
    return (STEPS / name).read_text()


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv


@pytest.fixture(params=[OWN, BARE_VENV])
def python(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The step's ``environment.python``: None for pipesched's own, else a bare venv's python.
    For the venv, PYTHONPATH is dropped, so that the step sees no pipesched (as on a machine
    where pipesched is installed only in its own environment)."""
    if request.param == OWN:
        return None
    monkeypatch.delenv("PYTHONPATH", raising=False)
    interpreter = request.getfixturevalue("bare_venv") / "bin" / "python"
    for module in ("scheduler", "azureml"):
        probe = subprocess.run(
            [interpreter, "-c", f"import {module}"], capture_output=True, cwd=interpreter.parent
        )
        assert probe.returncode != 0, f"the bare venv must not see {module}"
    return str(interpreter)


def environment(python: str | None, **variables: str) -> dict:
    env: dict = {"python": python} if python else {}
    if variables:
        env["variables"] = variables
    return env


def log_of(detail, step: str) -> str:
    return Path(detail.latest_attempts()[step].log_path).read_text()


def register_model(project: Project, name: str, version: int, files: dict[str, str]) -> Path:
    """What the registry keeps: ``<default datastore>/.pipesched/models/NAME/VERSION/``."""
    folder = project.datastore / ".pipesched" / "models" / name / str(version)
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


# ---- metrics -----------------------------------------------------------------------------------


def test_a_training_script_logs_to_the_step_and_the_pipeline(tmp_path: Path, python: str | None):
    project = make_project(tmp_path)
    raw = project.datastore / "diabetes"
    raw.mkdir(parents=True)
    (raw / "a.csv").write_text("1\n2\n3\n")
    (raw / "b.csv").write_text("4\n5\n")
    project.pipeline(
        "train",
        {
            "parameters": {"raw_data": {"type": "path", "default": "diabetes"}},
            "steps": {
                "train": {
                    "type": "python_script",
                    "script": "train.py",
                    "arguments": ["--input-data", "${{parameters.raw_data}}", "--reg", "0.05"],
                    "environment": environment(python),
                }
            },
        },
        {"train.py": step_script("log_metrics_to_step_and_pipeline.py")},
    )
    detail = execute(project, "train")
    step = steps_of(detail)["train"]
    assert step["status"] == "completed", log_of(detail, "train")
    assert step["metrics"] == {
        "rows": 5,
        "regularization_rate": 0.05,
        "fibonacci": [0, 1, 1, 2, 3, 5, 8, 13],
        "loss": [0.9, 0.5, 0.3],
        "per_epoch": [
            {"epoch": 1, "loss": 0.9},
            {"epoch": 2, "loss": 0.5},
            {"epoch": 3, "loss": 0.3},
        ],
        "rows_seen_by_pipeline": 5,
    }
    log = log_of(detail, "train")
    assert f"step run: {detail.run.id}.train pipeline run: {detail.run.id}" in log
    assert f"named input: {raw.resolve()}" in log


# ---- models ------------------------------------------------------------------------------------


def test_a_parallel_run_entry_script_scores_with_the_latest_registered_model(
    tmp_path: Path, python: str | None
):
    project = make_project(tmp_path)
    inbox = project.datastore / "inbox"
    inbox.mkdir(parents=True)
    for i in range(5):
        (inbox / f"x{i}.txt").write_text(str(i))
    register_model(project, "iris-model", 1, {"model.json": json.dumps({"factor": 10})})
    register_model(project, "iris-model", 2, {"model.json": json.dumps({"factor": 100})})
    project.pipeline(
        "score",
        {
            "parameters": {"input_path": {"type": "path", "default": "inbox"}},
            "data": {"results": {}},
            "steps": {
                "score": {
                    "type": "parallel_run",
                    "entry_script": "score.py",
                    "arguments": ["--model_name", "iris-model"],
                    "input": "${{parameters.input_path}}",
                    "output": "results",
                    "mini_batch_size": 2,
                    "process_count_per_node": 2,
                    "run_max_try": 1,
                    "environment": environment(python),
                }
            },
        },
        {"score.py": step_script("score_files_with_registered_model.py")},
    )
    detail = execute(project, "score")
    step = steps_of(detail)["score"]
    workers = Path(detail.latest_attempts()["score"].workdir).parent / "1.workers"
    worker_logs = "".join(p.read_text() for p in sorted(workers.glob("worker-*.log")))
    assert step["status"] == "completed", log_of(detail, "score") + worker_logs
    rows = (Path(step["outputs"]["results"]) / "parallel_run_step.txt").read_text().splitlines()
    assert rows == [f"x{i}.txt: {i * 100.0}" for i in range(5)]
    assert "|ParallelRunStep.EntryScript|INFO|" in worker_logs
    assert "init() is called." in worker_logs and "run() is called with: [" in worker_logs


def test_registered_models_resolve_by_folder_as_azure_ml_resolves_them(tmp_path: Path):
    project = make_project(tmp_path)
    first = register_model(project, "digits", 1, {"digits/weights.txt": "w1"})
    latest = register_model(project, "digits", 2, {"digits/weights.txt": "w2"})
    partial = latest.parent / ".3.partial"  # a copy not yet renamed into place: not a version
    (partial / "digits").mkdir(parents=True)
    project.pipeline(
        "models",
        {"steps": {"resolve": {"type": "python_script", "script": "resolve.py"}}},
        {"resolve.py": step_script("resolve_registered_models.py")},
    )
    detail = execute(project, "models")
    step = steps_of(detail)["resolve"]
    assert step["status"] == "completed", log_of(detail, "resolve")
    metrics = step["metrics"]
    workdir = Path(detail.latest_attempts()["resolve"].workdir)
    assert metrics["latest_weights"] == "w2"
    assert metrics["latest_path"] == str(latest / "digits")
    assert metrics["first_path"] == str(first / "digits")
    assert metrics["model_id"] == "digits:2"
    assert Path(metrics["downloaded"]) == Path("outputs/digits")
    assert (workdir / "outputs" / "digits" / "weights.txt").read_text() == "w2"
    assert "model 'no-such-model' not found" in metrics["missing"]
    assert "`pipesched models`" in metrics["missing"]
    assert metrics["bad_version"] == "version should be an int"


# ---- what pipesched does not stand in for ------------------------------------------------------


def test_a_step_needing_azure_only_services_fails_saying_what_to_use(
    tmp_path: Path, python: str | None
):
    project = make_project(tmp_path)
    project.pipeline(
        "register",
        {
            "steps": {
                "register": {
                    "type": "python_script",
                    "script": "register.py",
                    "arguments": ["--saved-model", "model.bin"],
                    "environment": environment(python),
                }
            }
        },
        {"register.py": step_script("register_model_from_hyperdrive_run.py"), "model.bin": "m"},
    )
    detail = execute(project, "register")
    log = log_of(detail, "register")
    assert steps_of(detail)["register"]["status"] == "failed"
    assert "ModuleNotFoundError: module azureml.train is not available in a pipesched step" in log
    assert "HyperDrive" in log and "Azure-only" in log


def test_names_without_a_stand_in_say_so_and_what_to_use_instead(tmp_path: Path):
    project = make_project(tmp_path)
    probe = """
    import azureml.core
    from azureml.core import Model, Run

    def attempt(label, action):
        try:
            action()
        except (ImportError, AttributeError) as exc:
            print(f"{label}: {type(exc).__name__}: {exc}")

    attempt("import", lambda: __import__("azureml.core", fromlist=["ScriptRunConfig"]).ScriptRunConfig)
    with open("m.pkl", "wb") as model_file:
        model_file.write(b"weights")
    print("register:", Model.register(None, "m.pkl", "m").version)
    attempt("widgets", lambda: __import__("azureml.widgets"))
    print("probe:", hasattr(azureml.core, "__wrapped__"), hasattr(Run.get_context(), "_private"))

    import scheduler.runtime
    plain = scheduler.runtime.Run.get_context()
    print("contexts:", type(plain).__module__, type(Run.get_context()).__module__)
    """
    project.pipeline(
        "names",
        {"steps": {"probe": {"type": "python_script", "script": "probe.py"}}},
        {"probe.py": probe},
    )
    detail = execute(project, "names")
    assert steps_of(detail)["probe"]["status"] == "completed", log_of(detail, "probe")
    lines = dict(
        line.split(": ", 1) for line in log_of(detail, "probe").splitlines() if ": " in line
    )
    assert lines["import"].startswith(
        "NotAvailableInPipesched: azureml.core.ScriptRunConfig is not available in a pipesched step"
    )
    assert lines["register"] == "1"  # registering in a step goes to the model registry
    assert lines["widgets"].startswith("ModuleNotFoundError: module azureml.widgets")
    assert "scheduler.sdk" in lines["widgets"]
    assert lines["probe"] == "False False"  # private names stay plain AttributeErrors
    assert lines["contexts"] == "scheduler.runtime azureml.core.run"  # one run object per class


# ---- datastores and datasets -------------------------------------------------------------------


def test_a_step_moves_files_through_the_default_datastore(tmp_path: Path, python: str | None):
    project = make_project(tmp_path)
    project.pipeline(
        "move",
        {
            "steps": {
                "move": {
                    "type": "python_script",
                    "script": "move.py",
                    "environment": environment(python),
                }
            }
        },
        {
            "move.py": step_script("move_files_through_datastore.py"),
            "local_data/a.csv": "x\n1\n",
            "local_data/sub/b.csv": "x\n2\n",
            "local_data/notes.txt": "not csv",
        },
    )
    detail = execute(project, "move")
    step = steps_of(detail)["move"]
    assert step["status"] == "completed", log_of(detail, "move")
    uploaded = project.datastore / "uploaded"
    assert sorted(p.relative_to(uploaded).as_posix() for p in uploaded.rglob("*.*")) == [
        "a.csv",
        "notes.txt",
        "sub/b.csv",
    ]
    assert step["metrics"]["dataset_files"] == ["/a.csv"]  # "uploaded/*.csv": this level only
    assert step["metrics"]["downloaded"] == 1
    assert step["metrics"]["fetched_back"] == 3
    workdir = Path(detail.latest_attempts()["move"].workdir)
    assert (workdir / "outputs" / "copy" / "uploaded" / "sub" / "b.csv").read_text() == "x\n2\n"


def test_a_tabular_input_reads_as_a_dataframe(tmp_path: Path):
    pytest.importorskip("pandas")
    project = make_project(tmp_path)
    table = project.datastore / "incomes"
    table.mkdir(parents=True)
    (table / "part1.csv").write_text("NAME,INCOME\na,10\nb,20\n")
    (table / "part2.csv").write_text("NAME,INCOME\nc,12.5\n")
    project.pipeline(
        "tabular",
        {
            "parameters": {"tabular_dataset": {"type": "path", "default": "incomes"}},
            "steps": {
                "read": {
                    "type": "python_script",
                    "script": "read.py",
                    "arguments": ["${{parameters.tabular_dataset}}"],
                }
            },
        },
        {"read.py": step_script("read_tabular_input.py")},
    )
    detail = execute(project, "tabular")
    step = steps_of(detail)["read"]
    assert step["status"] == "completed", log_of(detail, "read")
    assert step["metrics"] == {"row_count": 3, "total_income": 42.5}


# ---- a real azureml always wins ----------------------------------------------------------------

FAKE_REAL_SDK = {
    "azureml/__init__.py": "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n",
    "azureml/core/__init__.py": textwrap.dedent(
        """
        class Run:
            @staticmethod
            def get_context():
                return "the real SDK's run"
        """
    ),
}

WHICH_AZUREML = """
import sys
import azureml
from azureml.core import Run
from azureml_user.parallel_run import EntryScript
print("azureml:", azureml.__path__[0])
print("run:", Run.get_context())
print("entry script:", type(EntryScript()).__module__)
try:
    import azureml.exceptions
except ImportError as exc:
    print("exceptions:", exc)
print("stand-in on sys.path:", any("azureml-" in p for p in sys.path))
"""


def write_fake_sdk(folder: Path) -> Path:
    for relative, text in FAKE_REAL_SDK.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def which_azureml(project: Project, python: str | None, **variables: str) -> dict[str, str]:
    project.pipeline(
        "which",
        {
            "steps": {
                "which": {
                    "type": "python_script",
                    "script": "which.py",
                    "environment": environment(python, **variables),
                }
            }
        },
        {"which.py": WHICH_AZUREML},
    )
    detail = execute(project, "which")
    log = log_of(detail, "which")
    assert steps_of(detail)["which"]["status"] == "completed", log
    return dict(line.split(": ", 1) for line in log.splitlines())


def test_a_real_azureml_on_the_steps_pythonpath_wins(tmp_path: Path):
    project = make_project(tmp_path)
    real = write_fake_sdk(tmp_path / "real-sdk")
    seen = which_azureml(project, None, PYTHONPATH=str(real))
    assert seen["azureml"] == str(real / "azureml")
    assert seen["run"] == "the real SDK's run"
    assert seen["entry script"] == "azureml_user.parallel_run"  # the real SDK has none: ours
    assert seen["exceptions"] == "No module named 'azureml.exceptions'"  # the real one's error
    assert seen["stand-in on sys.path"] == "False"


def test_a_real_azureml_installed_in_the_steps_venv_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("PYTHONPATH", raising=False)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    write_fake_sdk(site_packages)
    project = make_project(tmp_path)
    seen = which_azureml(project, str(venv / "bin" / "python"))
    assert seen["azureml"] == str(site_packages / "azureml")
    assert seen["run"] == "the real SDK's run"
    assert seen["entry script"] == "azureml_user.parallel_run"


def test_the_stand_in_keeps_the_steps_own_sitecustomize(tmp_path: Path):
    project = make_project(tmp_path)
    theirs = tmp_path / "their-site"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import os\nos.environ['THEIR_SITE'] = 'ran'\n")
    probe = """
    import os, sys
    from azureml.core import Run
    Run.get_context().log("their_site", os.environ.get("THEIR_SITE", "did not run"))
    Run.get_context().log("path", [p for p in sys.path if "azureml-" in p])
    """
    project.pipeline(
        "site",
        {
            "steps": {
                "s": {
                    "type": "python_script",
                    "script": "s.py",
                    "environment": environment(None, PYTHONPATH=str(theirs)),
                }
            }
        },
        {"s.py": probe},
    )
    detail = execute(project, "site")
    step = steps_of(detail)["s"]
    assert step["status"] == "completed", log_of(detail, "s")
    assert step["metrics"] == {"their_site": "ran", "path": []}


# ---- pipesched's own processes in a step's environment --------------------------------------


def test_pipescheds_own_processes_find_the_package_past_the_runtime_copy(tmp_path: Path):
    """A step on another interpreter has a copy of ``scheduler.runtime`` first on its PYTHONPATH.
    The parallel_run driver runs on pipesched's own interpreter with that environment, and must
    still import the rest of pipesched (here from a plain folder, as from site-packages)."""
    shim = runtime_shim(tmp_path / "state")
    probe = """
    import sys
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in f.__module__]
    import scheduler.runtime, scheduler.executor.parallel.driver
    print(scheduler.runtime.__file__)
    print(scheduler.executor.parallel.driver.__file__)
    """
    result = subprocess.run(
        [sys.executable, "-P", "-c", textwrap.dedent(probe)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), str(REPO)])},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        str(shim / "scheduler" / "runtime.py"),
        str(REPO / "scheduler" / "executor" / "parallel" / "driver.py"),
    ]
