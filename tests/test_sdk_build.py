"""Azure ML SDK v1 pipeline code → the validated pipeline definition (scheduler.sdk.build):
each step class maps to pipeline.yaml's fields, PipelineData wiring gives the DAG, mistakes
point at the test's own lines, ignored arguments warn once, impossible ones are refused."""

from __future__ import annotations

import sys
import types
import warnings
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors
from scheduler.definitions.graph import build_graph
from scheduler.sdk import (
    CommandStep,
    ComputeTarget,
    DatabricksStep,
    DataPath,
    DataPathComputeBinding,
    Dataset,
    DataTransferStep,
    IgnoredArgumentWarning,
    OutputFileDatasetConfig,
    ParallelRunConfig,
    ParallelRunStep,
    Pipeline,
    PipelineData,
    PipelineParameter,
    PythonScriptStep,
    RunConfiguration,
    SdkError,
)
from scheduler.sdk._warn import reset_warnings
from scheduler.sdk.datastore import Datastore
from tests.projects import Project, make_project

HERE = Path(__file__).name


@pytest.fixture(autouse=True)
def fresh_warnings():
    reset_warnings()
    yield
    reset_warnings()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "home")


@pytest.fixture
def scripts(project: Project) -> Path:
    folder = project.root / "notebook" / "scripts"
    folder.mkdir(parents=True)
    for name in ("prep.py", "train.py", "score.py"):
        (folder / name).write_text("print('hi')\n")
    (folder / "report.ipynb").write_text("{}")
    return folder


@pytest.fixture
def ws(project: Project):
    """A stand-in workspace: the build needs only its config and default datastore."""
    workspace = types.SimpleNamespace(_config=project.config(), _backend=None)
    workspace.get_default_datastore = lambda: Datastore(workspace, "default")
    return workspace


def line_after() -> int:
    """The caller's next line: where the step under test is made."""
    return sys._getframe(1).f_lineno + 1


def steps_of(pipeline: Pipeline) -> dict:
    return pipeline.graph["steps"]


# -- each step class maps to pipeline.yaml's fields --------------------------------------------


def test_python_script_step_maps_to_a_python_script_step(ws, scripts: Path):
    out = PipelineData("prepped", datastore=ws.get_default_datastore())
    reg = PipelineParameter(name="reg", default_value=0.5)
    step = PythonScriptStep(
        name="Prepare Data",
        script_name="prep.py",
        source_directory=str(scripts),
        arguments=["--out", out, "--reg", reg, "--epochs", 3, "--fast", True],
        outputs=[out],
        params={"mode": "full"},
        compute_target=ComputeTarget(ws, "local"),
        allow_reuse=False,
    )
    pipeline = Pipeline(ws, [step])
    assert steps_of(pipeline) == {
        "prepare-data": {
            "type": "python_script",
            "display_name": "Prepare Data",
            "source_directory": "scripts",
            "script": "prep.py",
            "arguments": [
                "--out",
                "${{data.prepped}}",
                "--reg",
                "${{parameters.reg}}",
                "--epochs",
                "3",
                "--fast",
                "True",
            ],
            "outputs": ["prepped"],
            "allow_reuse": False,
            "environment": {"variables": {"AML_PARAMETER_mode": "full"}},
        }
    }
    assert pipeline.graph["parameters"] == {"reg": {"type": "float", "default": 0.5}}
    assert pipeline.validate() == []


def test_pipeline_data_between_steps_gives_the_dag(ws, scripts: Path):
    prepped = PipelineData("prepped")
    prep = PythonScriptStep(
        "prep.py", source_directory=scripts, arguments=[prepped], outputs=[prepped]
    )
    train = PythonScriptStep(
        "train.py", source_directory=scripts, arguments=[prepped], inputs=[prepped]
    )
    definition = Pipeline(ws, [train, prep]).definition()
    graph = build_graph(definition)
    assert graph.predecessors("train-py") == {"prep-py"}
    assert graph.topological_order() == ["prep-py", "train-py"]


def test_resolve_closure_pulls_in_the_producer_of_an_input(ws, scripts: Path):
    prepped = PipelineData("prepped")
    PythonScriptStep("prep.py", source_directory=scripts, arguments=[prepped], outputs=[prepped])
    train = PythonScriptStep("train.py", source_directory=scripts, inputs=[prepped])
    assert list(Pipeline(ws, [train]).definition().steps) == ["prep-py", "train-py"]


def test_without_resolve_closure_an_unlisted_producer_is_missing(ws, scripts: Path):
    prepped = PipelineData("prepped")
    PythonScriptStep("prep.py", source_directory=scripts, arguments=[prepped], outputs=[prepped])
    train = PythonScriptStep("train.py", source_directory=scripts, inputs=[prepped])
    (error,) = Pipeline(ws, [train], resolve_closure=False).validate()
    assert "data 'prepped' is read by step 'train-py' but no step produces it" in error


def test_named_dataset_input_becomes_a_path_parameter(ws, scripts: Path):
    raw = Dataset.File.from_files(path=(ws.get_default_datastore(), "diabetes-data"))
    step = PythonScriptStep(
        "prep.py",
        source_directory=scripts,
        arguments=["--in", raw.as_named_input("raw").as_mount()],
    )
    pipeline = Pipeline(ws, [step])
    assert pipeline.graph["parameters"] == {
        "raw": {"type": "path", "default": "datastore://default/diabetes-data"}
    }
    assert steps_of(pipeline)["prep-py"]["arguments"] == ["--in", "${{parameters.raw}}"]


def test_dataset_only_in_inputs_is_referenced_through_azures_variable(ws, scripts: Path):
    raw = Dataset.File.from_files(path=[(ws.get_default_datastore(), "inbox")])
    step = PythonScriptStep("prep.py", source_directory=scripts, inputs=[raw.as_named_input("raw")])
    definition = Pipeline(ws, [step]).definition()
    prep = definition.steps["prep-py"]
    assert prep.environment.variables == {"AZUREML_DATAREFERENCE_raw": "${{parameters.raw}}"}
    assert prep.parameter_refs() == {"raw"}  # so run.input_datasets["raw"] is filled


def test_datapath_parameter_in_a_binding_tuple_is_a_path_parameter(ws, scripts: Path):
    store = ws.get_default_datastore()
    path = PipelineParameter("input_path", default_value=DataPath(store, "inbox"))
    step = PythonScriptStep(
        "score.py",
        source_directory=scripts,
        arguments=["--input", (path, DataPathComputeBinding(mode="mount"))],
    )
    pipeline = Pipeline(ws, [step])
    assert pipeline.graph["parameters"]["input_path"] == {
        "type": "path",
        "default": "datastore://default/inbox",
    }
    assert steps_of(pipeline)["score-py"]["arguments"] == ["--input", "${{parameters.input_path}}"]


def test_output_file_dataset_config_in_arguments_is_that_steps_output(ws, scripts: Path):
    out = OutputFileDatasetConfig(name="features")
    prep = PythonScriptStep("prep.py", source_directory=scripts, arguments=["--out", out])
    train = PythonScriptStep(
        "train.py", source_directory=scripts, arguments=["--in", out.as_input("features")]
    )
    definition = Pipeline(ws, [prep, train]).definition()
    assert definition.steps["prep-py"].produces() == ["features"]
    assert definition.steps["train-py"].consumes() == {"features"}


def test_output_destination_path_warns_and_keeps_the_datastore(ws):
    with pytest.warns(IgnoredArgumentWarning, match="destination path"):
        out = OutputFileDatasetConfig("o", destination=(Datastore(ws, "archive"), "x/{run-id}"))
    assert out._datastore_name == "archive"


def test_parallel_run_step_maps_to_a_parallel_run_step(ws, scripts: Path):
    raw = Dataset.File.from_files(path=(ws.get_default_datastore(), "batches"))
    scores = PipelineData("scores")
    config = ParallelRunConfig(
        environment=None,
        entry_script="score.py",
        error_threshold=5,
        output_action="append_row",
        compute_target="local",
        node_count=1,
        mini_batch_size="4",
        source_directory=str(scripts),
        run_invocation_timeout=30,
        environment_variables={"OMP_NUM_THREADS": "1"},
    )
    step = ParallelRunStep(
        name="score",
        parallel_run_config=config,
        inputs=[raw.as_named_input("batch")],
        output=scores,
    )
    assert steps_of(Pipeline(ws, [step]))["score"] == {
        "type": "parallel_run",
        "source_directory": "scripts",
        "entry_script": "score.py",
        "input": "${{parameters.batch}}",
        "output": "scores",
        "mini_batch_size": 4,
        "error_threshold": 5,
        "run_invocation_timeout": 30,
        "environment": {"variables": {"OMP_NUM_THREADS": "1"}},
    }


def test_parallel_run_refuses_a_size_for_a_file_dataset(ws, scripts: Path):
    files = Dataset.File.from_files(path=(ws.get_default_datastore(), "batches"))
    config = ParallelRunConfig(
        None, "score.py", -1, "summary_only", "local", 1, mini_batch_size="1MB"
    )
    with pytest.raises(SdkError, match="is a size, for tabular datasets"):
        ParallelRunStep(name="score", parallel_run_config=config, inputs=[files])


def test_data_transfer_step_maps_source_and_destination(ws):
    store = ws.get_default_datastore()
    copied = PipelineData("copied")
    step = DataTransferStep(
        name="copy in",
        source_data_reference=DataPath(store, "inbox"),
        destination_data_reference=copied,
    )
    assert steps_of(Pipeline(ws, [step]))["copy-in"] == {
        "type": "data_transfer",
        "display_name": "copy in",
        "source": "datastore://default/inbox",
        "destination": "copied",
    }


def test_command_step_string_is_split_into_argv(ws, scripts: Path):
    out = PipelineData("model")
    step = CommandStep(
        command="Rscript fit.R --alpha '0.5 1'", source_directory=scripts, outputs=[out]
    )
    listed = CommandStep(command=["Rscript", "score.R", out], source_directory=scripts)
    steps = steps_of(Pipeline(ws, [step, listed]))
    assert steps["rscript"]["command"] == ["Rscript", "fit.R", "--alpha", "0.5 1"]
    assert steps["rscript-2"]["command"] == ["Rscript", "score.R", "${{data.model}}"]


def test_databricks_python_script_runs_as_a_python_script_step(ws, scripts: Path):
    step = DatabricksStep(
        name="features",
        python_script_name="prep.py",
        python_script_params=["--day", "1"],
        source_directory=str(scripts),
        spark_env_variables={"PYSPARK_PYTHON": "python3"},
        timeout_seconds=600,
    )
    assert steps_of(Pipeline(ws, [step]))["features"] == {
        "type": "python_script",
        "source_directory": "scripts",
        "script": "prep.py",
        "arguments": ["--day", "1"],
        "timeout": 600.0,
        "environment": {"variables": {"PYSPARK_PYTHON": "python3"}},
    }


def test_databricks_local_notebook_becomes_a_notebook_step(ws, scripts: Path):
    alpha = PipelineParameter("alpha", 0.1)
    step = DatabricksStep(
        name="report",
        notebook_path="report.ipynb",
        notebook_params={"alpha": alpha, "title": "weekly"},
        source_directory=str(scripts),
    )
    assert steps_of(Pipeline(ws, [step]))["report"]["notebook"] == "report.ipynb"
    assert steps_of(Pipeline(ws, [step]))["report"]["parameters"] == {
        "alpha": "${{parameters.alpha}}",
        "title": "weekly",
    }


def test_databricks_workspace_notebook_is_refused_with_the_fix(scripts: Path):
    with pytest.raises(SdkError, match="Databricks workspace") as caught:
        DatabricksStep(name="nb", notebook_path="/Users/me/etl", source_directory=str(scripts))
    assert "export it as etl.ipynb" in caught.value.hint


def test_databricks_main_class_runs_java_with_local_jars(ws, scripts: Path):
    step = DatabricksStep(
        name="jar",
        main_class_name="com.example.Main",
        jar_libraries=["lib/app.jar"],
        jar_params=["--day", "1"],
        source_directory=str(scripts),
    )
    assert steps_of(Pipeline(ws, [step]))["jar"]["command"] == [
        "java",
        "-cp",
        "lib/app.jar",
        "com.example.Main",
        "--day",
        "1",
    ]


def test_databricks_dbfs_jar_is_refused(scripts: Path):
    with pytest.raises(SdkError, match=r"local \.jar files"):
        DatabricksStep(name="jar", main_class_name="Main", jar_libraries=["dbfs:/jars/app.jar"])


def test_step_ids_are_slugs_made_unique(ws, scripts: Path):
    first = PythonScriptStep("prep.py", name="Prep Data!", source_directory=scripts)
    second = PythonScriptStep("prep.py", name="prep data", source_directory=scripts)
    assert list(steps_of(Pipeline(ws, [first, second]))) == ["prep-data", "prep-data-2"]


# -- errors at the user's lines -----------------------------------------------------------------


def test_missing_script_error_names_this_file_and_line(ws, scripts: Path):
    line = line_after()
    step = PythonScriptStep("missing.py", name="train", source_directory=scripts)
    with pytest.raises(DefinitionErrors) as caught:
        Pipeline(ws, [step]).definition()
    (error,) = caught.value.errors
    assert str(error).startswith(
        f"tests/{HERE}:{line}:1: error: script 'missing.py' of step 'train'"
    )


def test_unknown_compute_target_points_at_the_step(ws, scripts: Path):
    line = line_after()
    step = PythonScriptStep("prep.py", source_directory=scripts, compute_target="cpu-cluster")
    (error,) = Pipeline(ws, [step]).validate()
    assert error.startswith(f"tests/{HERE}:{line}:1: error: unknown compute target 'cpu-cluster'")


def test_cycle_is_reported_at_a_step_of_it(ws, scripts: Path):
    line = line_after()
    a = PythonScriptStep("prep.py", name="a", source_directory=scripts)
    b = PythonScriptStep("train.py", name="b", source_directory=scripts)
    a.run_after(b)
    b.run_after(a)
    (error,) = Pipeline(ws, [a, b]).validate()
    places = {f"tests/{HERE}:{line}:1", f"tests/{HERE}:{line + 1}:1"}
    assert error.split(": error: ")[0] in places
    assert "steps form a cycle" in error


def test_two_pipeline_data_with_one_name_is_an_error(ws, scripts: Path):
    first = PipelineData("out")
    line = line_after()
    second = PipelineData("out")
    a = PythonScriptStep("prep.py", name="a", source_directory=scripts, outputs=[first])
    b = PythonScriptStep("train.py", name="b", source_directory=scripts, outputs=[second])
    errors = Pipeline(ws, [a, b]).validate()
    assert f"tests/{HERE}:{line}:1: error: two PipelineData objects are named 'out'" in errors[0]


# -- warnings and refusals --------------------------------------------------------------------


def test_an_ignored_argument_warns_once(scripts: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("a", "b", "c"):
            PythonScriptStep(
                "prep.py", name=name, source_directory=scripts, runconfig=RunConfiguration()
            )
    shown = [str(w.message) for w in caught if issubclass(w.category, IgnoredArgumentWarning)]
    assert shown == [
        "PythonScriptStep: argument 'runconfig' is ignored on pipesched (steps run with the "
        "interpreter and variables of their `environment`)"
    ]


def test_the_warning_points_at_the_users_line(scripts: Path):
    line = line_after()
    with pytest.warns(IgnoredArgumentWarning) as caught:
        PythonScriptStep("prep.py", source_directory=scripts, hash_paths=["x"])
    assert (Path(caught[0].filename).name, caught[0].lineno) == (HERE, line + 1)


def test_tabular_dataset_from_a_query_is_refused_with_the_reason():
    with pytest.raises(SdkError, match="not databases") as caught:
        Dataset.Tabular.from_sql_query("SELECT 1")
    assert "sql step" in (caught.value.hint or "")


def test_registered_dataset_lookup_is_refused():
    with pytest.raises(SdkError, match="no dataset registry"):
        Dataset.get_by_name(None, "diabetes")


def test_unknown_datastore_of_pipeline_data_points_at_its_line(ws, scripts: Path):
    line = line_after()
    out = PipelineData("out", datastore=Datastore(ws, "archive"))
    step = PythonScriptStep("prep.py", source_directory=scripts, outputs=[out])
    (error,) = Pipeline(ws, [step]).validate()
    assert error.startswith(f"tests/{HERE}:{line}:1: error: unknown datastore 'archive'")


def test_step_sequence_orders_steps_without_data(ws, scripts: Path):
    from scheduler.sdk import StepSequence

    prep = PythonScriptStep("prep.py", name="prep", source_directory=scripts)
    train = PythonScriptStep("train.py", name="train", source_directory=scripts)
    score = PythonScriptStep("score.py", name="score", source_directory=scripts)
    report = PythonScriptStep("prep.py", name="report", source_directory=scripts)
    sequence = StepSequence(steps=[prep, [train, score], report])
    graph = build_graph(Pipeline(ws, steps=sequence).definition())
    assert graph.predecessors("train") == graph.predecessors("score") == {"prep"}
    assert graph.predecessors("report") == {"train", "score"}
    assert graph.topological_order()[0] == "prep"
