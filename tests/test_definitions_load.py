"""Valid pipeline definitions load into the model the executor uses, with DESIGN's defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors, NotFound
from scheduler.definitions import (
    DataTransferStep,
    NotebookStep,
    ParallelRunStep,
    PythonScriptStep,
    SqlStep,
    discover_pipelines,
    find_pipeline,
    load_pipeline,
    validate_all,
)

try:
    from fixtures_definitions import GOOD_PIPELINE, make_config, write_pipeline
except ImportError:  # tests/ became a package
    from tests.fixtures_definitions import GOOD_PIPELINE, make_config, write_pipeline


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    return make_config(tmp_path)


def test_design_example_loads_with_its_values(config) -> None:
    file = write_pipeline(config, "diabetes", GOOD_PIPELINE)
    pipeline = load_pipeline(file.parent, config)
    assert pipeline.name == "diabetes-training"
    assert pipeline.experiment == "diabetes-training"
    assert pipeline.file == file
    assert pipeline.directory == file.parent
    assert list(pipeline.steps) == ["prep", "train"]
    prep = pipeline.steps["prep"]
    assert isinstance(prep, PythonScriptStep)
    assert prep.display_name == "Prepare Data"
    assert prep.timeout == 1800.0
    assert prep.retries == 1
    assert prep.environment.variables == {"OMP_NUM_THREADS": "1"}
    assert prep.script_path == file.parent / "prep.py"
    assert pipeline.parameters["reg_rate"].type == "float"
    assert pipeline.parameters["reg_rate"].required is False


def test_defaults_of_a_minimal_pipeline(config) -> None:
    file = write_pipeline(
        config, "mini", "steps:\n  only: {type: python_script, script: prep.py}\n"
    )
    pipeline = load_pipeline(file, config)
    step = pipeline.steps["only"]
    assert pipeline.name == "mini"
    assert pipeline.experiment == "mini"
    assert pipeline.continue_on_step_failure is False
    assert step.id == "only"
    assert step.display_name == "only"
    assert step.source_directory == file.parent
    assert (step.allow_reuse, step.compute, step.timeout, step.retries) == (True, "local", None, 0)
    assert step.environment.python is None


def test_numbers_in_arguments_become_strings(config) -> None:
    text = "steps:\n  s: {type: python_script, script: prep.py, arguments: [--n, 10, 0.5]}\n"
    pipeline = load_pipeline(write_pipeline(config, "p", text), config)
    assert pipeline.steps["s"].arguments == ["--n", "10", "0.5"]


def test_produces_and_consumes_follow_data(config) -> None:
    pipeline = load_pipeline(write_pipeline(config, "p", GOOD_PIPELINE), config)
    assert pipeline.steps["prep"].produces() == ["prepped_data"]
    assert pipeline.steps["prep"].consumes() == set()
    assert pipeline.steps["train"].consumes() == {"prepped_data"}
    assert pipeline.steps["train"].parameter_refs() == {"reg_rate"}
    assert pipeline.steps["prep"].parameter_refs() == {"raw_data"}


def test_a_data_reference_alone_makes_a_dependency(config) -> None:
    text = """\
    data: {x: {}}
    steps:
      a: {type: python_script, script: prep.py, outputs: [x]}
      b: {type: python_script, script: prep.py, arguments: ["${{data.x}}"]}
    """
    pipeline = load_pipeline(write_pipeline(config, "p", text), config)
    assert pipeline.steps["b"].consumes() == {"x"}


def test_substituted_keeps_one_argument_one_string(config) -> None:
    pipeline = load_pipeline(write_pipeline(config, "p", GOOD_PIPELINE), config)
    values = {
        "parameters": {"reg_rate": "0.5", "raw_data": "/data/raw dir"},
        "data": {"prepped_data": "/out/prepped"},
        "run": {"id": "r1", "experiment": "e"},
    }
    step = pipeline.steps["prep"].substituted(values)
    assert step.arguments == ["--input-data", "/data/raw dir", "--prepped-data", "/out/prepped"]


def test_every_step_type_validates(config) -> None:
    directory = config.pipelines_dir / "all"
    directory.mkdir()
    for name in ("score.py", "report.ipynb", "query.sql"):
        (directory / name).write_text("")
    text = """\
    parameters:
      inbox: {type: path, default: inbox}
    data:
      copied: {}
      scores: {}
      table: {}
    steps:
      copy:
        type: data_transfer
        source: "${{parameters.inbox}}"
        destination: copied
        mode: sync
      score:
        type: parallel_run
        entry_script: score.py
        input: "${{data.copied}}"
        output: scores
        mini_batch_size: 5
      run_r:
        type: command
        command: [Rscript, --vanilla, 3]
        inputs: [scores]
      report:
        type: notebook
        notebook: report.ipynb
        parameters: {scores: "${{data.scores}}", alpha: 0.5}
      query:
        type: sql
        url: sqlite:///x.db
        script: query.sql
        export: table
    """
    pipeline = load_pipeline(write_pipeline(config, "all", text, files=()), config)
    copy, score = pipeline.steps["copy"], pipeline.steps["score"]
    assert isinstance(copy, DataTransferStep) and copy.produces() == ["copied"]
    assert isinstance(score, ParallelRunStep)
    assert score.produces() == ["scores"] and score.consumes() == {"copied"}
    assert (score.error_threshold, score.run_max_try, score.run_invocation_timeout) == (-1, 3, 60.0)
    assert score.process_count_per_node == (os.cpu_count() or 1)
    assert score.append_row_file_name == "parallel_run_step.txt"
    assert pipeline.steps["run_r"].command == ["Rscript", "--vanilla", "3"]
    assert isinstance(pipeline.steps["report"], NotebookStep)
    assert pipeline.steps["report"].consumes() == {"scores"}
    query = pipeline.steps["query"]
    assert isinstance(query, SqlStep) and query.produces() == ["table"]


def test_definition_dict_is_json_and_independent_of_the_folder(config, tmp_path: Path) -> None:
    first = load_pipeline(write_pipeline(config, "one", GOOD_PIPELINE), config)
    second = load_pipeline(write_pipeline(config, "two", GOOD_PIPELINE), config)
    dumped = first.definition_dict()
    assert json.loads(json.dumps(dumped)) == dumped
    assert dumped == second.definition_dict()
    assert dumped["steps"]["prep"]["source_directory"] == "."


def test_discover_uses_the_declared_name_and_the_folder_name(config) -> None:
    write_pipeline(config, "diabetes", GOOD_PIPELINE)
    write_pipeline(config, "plain", "steps: {a: {type: python_script, script: prep.py}}\n")
    write_pipeline(config, "broken", "steps: [\n")
    found = discover_pipelines(config)
    assert set(found) == {"diabetes-training", "plain", "broken"}
    assert found["diabetes-training"].parent.name == "diabetes"


def test_find_pipeline_by_name_or_folder(config) -> None:
    file = write_pipeline(config, "diabetes", GOOD_PIPELINE)
    assert find_pipeline("diabetes-training", config) == file
    assert find_pipeline("diabetes", config) == file


def test_find_pipeline_unknown_name_suggests(config) -> None:
    write_pipeline(config, "diabetes", GOOD_PIPELINE)
    with pytest.raises(NotFound) as info:
        find_pipeline("diabetes-trainig", config)
    assert info.value.hint == "did you mean 'diabetes-training'? known: diabetes-training"


def test_a_broken_pipeline_does_not_stop_loading_another(config) -> None:
    write_pipeline(config, "broken", "steps: [\n")
    good = write_pipeline(config, "good", GOOD_PIPELINE)
    assert load_pipeline(good, config).name == "diabetes-training"


def test_validate_all_collects_pipelines_and_schedules(config) -> None:
    write_pipeline(config, "good", GOOD_PIPELINE)
    write_pipeline(config, "bad", "steps: {a: {type: python_script, script: nope.py}}\n")
    config.schedules_file.write_text(
        "schedules:\n"
        "  - {name: s, pipeline: diabetes-training, cron: '0 0 * * *', parameters: {reg: 1}}\n"
        "  - {name: t, pipeline: nothere, interval: 5m}\n"
    )
    messages = [e.message for e in validate_all(config)]
    assert any("nope.py" in m for m in messages)
    assert any("unknown pipeline 'nothere'" in m for m in messages)


def test_validate_all_checks_schedule_parameters_against_the_pipeline(config) -> None:
    write_pipeline(config, "good", GOOD_PIPELINE)
    config.schedules_file.write_text(
        "schedules:\n"
        "  - {name: s, pipeline: diabetes-training, cron: '0 0 * * *', parameters: {reg: 1,"
        " reg_rate: abc}}\n"
    )
    messages = sorted(e.message for e in validate_all(config))
    assert messages == [
        "parameter 'reg_rate' must be a number: got 'abc' in schedule 's'",
        "unknown parameter 'reg' of pipeline 'diabetes-training' in schedule 's'",
    ]


def test_validate_all_of_good_definitions_is_empty(config) -> None:
    write_pipeline(config, "good", GOOD_PIPELINE)
    assert validate_all(config) == []


def test_load_pipeline_without_steps_is_an_error(config) -> None:
    with pytest.raises(DefinitionErrors) as info:
        load_pipeline(write_pipeline(config, "p", "steps: {}\n"), config)
    assert [e.message for e in info.value.errors] == ["a pipeline needs at least one step"]
