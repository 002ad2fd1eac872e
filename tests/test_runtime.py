"""The step scripts' runtime API (scheduler.runtime): what a script logs reaches the metrics file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import scheduler.runtime
from scheduler.runtime import Run, read_metrics_file

RUNTIME_SOURCE = Path(scheduler.runtime.__file__)
REPO = RUNTIME_SOURCE.parent.parent


@pytest.fixture
def step_env(tmp_path: Path) -> dict[str, str]:
    """The variables the executor sets for a step process."""
    return {
        "PIPESCHED_RUN_ID": "20261125-130214-ab12",
        "PIPESCHED_STEP": "train",
        "PIPESCHED_ATTEMPT": "2",
        "PIPESCHED_EXPERIMENT": "diabetes-training",
        "PIPESCHED_METRICS_FILE": str(tmp_path / "metrics.jsonl"),
        "PIPESCHED_IMAGES_DIR": str(tmp_path / "images"),
        "PIPESCHED_INPUT_DATASETS": json.dumps({"raw_data": str(tmp_path / "raw")}),
    }


@pytest.fixture
def in_step(monkeypatch: pytest.MonkeyPatch, step_env: dict[str, str]) -> dict[str, str]:
    for name, value in step_env.items():
        monkeypatch.setenv(name, value)
    return step_env


def run_script(
    tmp_path: Path, body: str, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "step.py"
    script.write_text(textwrap.dedent(body))
    base = {k: v for k, v in os.environ.items() if not k.startswith("PIPESCHED_")}
    return subprocess.run(
        [sys.executable, *args, str(script)],
        env={**base, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_metrics_survive_a_script_killed_right_after_logging(
    tmp_path: Path, step_env: dict[str, str]
) -> None:
    result = run_script(
        tmp_path,
        """
        import os, signal
        from scheduler.runtime import Run
        run = Run.get_context()
        run.log("accuracy", 0.93)
        run.log_list("losses", [0.5, 0.25])
        run.log_row("epoch", n=1, loss=0.5)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        step_env,
    )
    assert result.returncode == -9
    metrics = read_metrics_file(step_env["PIPESCHED_METRICS_FILE"])
    assert [(m["name"], m["kind"], m["value"]) for m in metrics] == [
        ("accuracy", "scalar", 0.93),
        ("losses", "list", [0.5, 0.25]),
        ("epoch", "row", {"n": 1, "loss": 0.5}),
    ]
    assert all(isinstance(m["time"], float) for m in metrics)


def test_offline_run_prints_metrics_and_stores_nothing(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        from scheduler.runtime import Run
        run = Run.get_context()
        print("id", run.id)
        run.log("accuracy", 0.93)
        run.complete()
        """,
        {},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("id OfflineRun_")
    assert lines[1] == "accuracy: 0.93"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step.py"]


def test_get_context_refuses_offline_when_not_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPESCHED_RUN_ID", raising=False)
    with pytest.raises(RuntimeError, match="PIPESCHED_RUN_ID"):
        Run.get_context(allow_offline=False)


def test_step_run_exposes_ids_experiment_and_input_datasets(in_step: dict[str, str]) -> None:
    run = Run.get_context()
    assert run.id == "20261125-130214-ab12.train"
    assert run.parent_id == "20261125-130214-ab12"
    assert run.experiment == "diabetes-training"
    assert run.experiment.name == "diabetes-training"  # Azure scripts write run.experiment.name
    assert run.attempt == 2
    assert (
        run.input_datasets["raw_data"]
        == json.loads(in_step["PIPESCHED_INPUT_DATASETS"])["raw_data"]
    )


def test_import_loads_only_the_standard_library(tmp_path: Path) -> None:
    probe = """
    import sys
    before = set(sys.modules)
    import scheduler.runtime
    new = {name.split(".")[0] for name in set(sys.modules) - before}
    print(sorted(n for n in new if n not in sys.stdlib_module_names and n != "scheduler"))
    print(sorted(n for n in sys.modules if n.startswith("scheduler.")))
    """
    result = run_script(tmp_path, probe, {"PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "['scheduler.runtime']"]


def test_runtime_works_from_a_copied_folder_without_site_packages(
    tmp_path: Path, step_env: dict[str, str]
) -> None:
    shim = tmp_path / "shim"
    (shim / "scheduler").mkdir(parents=True)
    (shim / "scheduler" / "__init__.py").write_text("")
    shutil.copy(RUNTIME_SOURCE, shim / "scheduler" / "runtime.py")
    result = run_script(
        tmp_path,
        """
        import importlib.util, scheduler.runtime
        assert importlib.util.find_spec("yaml") is None, "site-packages should be hidden"
        print(scheduler.runtime.__file__)
        scheduler.runtime.Run.get_context().log("rows", 12)
        """,
        {**step_env, "PYTHONPATH": str(shim)},
        "-S",
        "-s",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(shim / "scheduler" / "runtime.py")
    assert read_metrics_file(step_env["PIPESCHED_METRICS_FILE"])[0]["value"] == 12


def test_numpy_values_are_logged_as_plain_json(in_step: dict[str, str]) -> None:
    np = pytest.importorskip("numpy")
    run = Run.get_context()
    run.log("auc", np.float32(0.5))
    run.log("count", np.int64(7))
    run.log("ok", np.bool_(True))
    run.log_list("scores", np.array([1.5, 2.5]))
    run.log_row("confusion", matrix=np.array([[1, 2], [3, 4]]))
    values = [m["value"] for m in read_metrics_file(in_step["PIPESCHED_METRICS_FILE"])]
    assert values == [0.5, 7, True, [1.5, 2.5], {"matrix": [[1, 2], [3, 4]]}]


def test_value_that_is_not_json_fails_at_the_log_call(in_step: dict[str, str]) -> None:
    with pytest.raises(TypeError, match="object"):
        Run.get_context().log("bad", object())
    assert read_metrics_file(in_step["PIPESCHED_METRICS_FILE"]) == []


def test_log_image_copies_the_file_into_the_images_dir(
    tmp_path: Path, in_step: dict[str, str]
) -> None:
    picture = tmp_path / "roc.png"
    picture.write_bytes(b"\x89PNG fake")
    run = Run.get_context()
    run.log_image("ROC curve", path=str(picture))
    run.log_image("ROC curve", path=picture)
    stored = [m["value"] for m in read_metrics_file(in_step["PIPESCHED_METRICS_FILE"])]
    assert len(set(stored)) == 2
    for path in stored:
        assert Path(path).is_absolute()
        assert Path(path).parent == Path(in_step["PIPESCHED_IMAGES_DIR"])
        assert Path(path).read_bytes() == b"\x89PNG fake"


def test_log_image_saves_a_figure_as_png(in_step: dict[str, str]) -> None:
    class Figure:  # what log_image needs of a matplotlib figure
        def savefig(self, target: str, format: str) -> None:
            Path(target).write_bytes(f"{format} image".encode())

    Run.get_context().log_image("loss", plot=Figure())
    (metric,) = read_metrics_file(in_step["PIPESCHED_METRICS_FILE"])
    assert metric["kind"] == "image"
    assert metric["value"].endswith(".png")
    assert Path(metric["value"]).read_bytes() == b"png image"


def test_read_metrics_file_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"name": "a", "kind": "scalar", "value": 1, "time": 1.0}\n'
        '{"name": "b", "kind": "scalar", "val'
    )
    assert [m["name"] for m in read_metrics_file(path)] == ["a"]


def test_read_metrics_file_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_metrics_file(tmp_path / "absent.jsonl") == []
