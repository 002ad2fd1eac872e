"""Every kind of mistake in a pipeline.yaml is reported as ``file:line:col: error: ...`` at the
node that holds it, naming the field, with the fix where one is obvious."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors
from scheduler.definitions import load_pipeline

try:
    from fixtures_definitions import make_config, write_pipeline
except ImportError:  # tests/ became a package
    from tests.fixtures_definitions import make_config, write_pipeline

FILE = "pipelines/p/pipeline.yaml"


@pytest.fixture
def errors_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Load a pipeline text; return its errors as printed lines."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    config = make_config(tmp_path)

    def load(text: str) -> list[str]:
        write_pipeline(config, "p", text)
        with pytest.raises(DefinitionErrors) as info:
            load_pipeline(config.pipelines_dir / "p", config)
        return [str(e) for e in info.value.errors]

    return load


def test_unknown_key_points_at_the_key_and_suggests_the_field(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        script: prep.py
        scirpt: prep.py
    """
    assert errors_of(text) == [
        f"{FILE}:5:5: error: unknown key 'scirpt' in step 'prep' (did you mean 'script'?)"
    ]


def test_unknown_top_level_key_lists_allowed_keys(errors_of) -> None:
    text = """\
    stpes: {}
    steps:
      prep: {type: python_script, script: prep.py}
    """
    assert errors_of(text) == [
        f"{FILE}:1:1: error: unknown key 'stpes' in the pipeline (did you mean 'steps'?)"
    ]


def test_wrong_type_points_at_the_value(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        script: prep.py
        allow_reuse: "yes"
    """
    assert errors_of(text) == [
        f"{FILE}:5:18: error: 'allow_reuse' in step 'prep' must be true or false (got 'yes')"
    ]


def test_missing_required_field_points_at_the_step(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        arguments: []
    """
    assert errors_of(text) == [f"{FILE}:2:3: error: missing required field 'script' in step 'prep'"]


def test_unknown_step_type_suggests_and_lists_known_types(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: pyhton_script
        script: prep.py
    """
    assert errors_of(text) == [
        f"{FILE}:3:11: error: unknown step type 'pyhton_script' in step 'prep' (did you mean "
        "'python_script'? known types: python_script, data_transfer, parallel_run, command, "
        "notebook, sql)"
    ]


def test_unknown_data_in_inputs_lists_declared_data(errors_of) -> None:
    text = """\
    data:
      prepped_data: {}
    steps:
      prep: {type: python_script, script: prep.py, outputs: [prepped_data]}
      train:
        type: python_script
        script: train.py
        inputs: [prepped]
    """
    assert errors_of(text) == [
        f"{FILE}:8:14: error: unknown data 'prepped' (declared: prepped_data)"
    ]


def test_unknown_parameter_reference_lists_declared_parameters(errors_of) -> None:
    text = """\
    parameters:
      reg_rate: {type: float, default: 0.1}
    steps:
      prep:
        type: python_script
        script: prep.py
        arguments: [--reg, "${{ parameters.reg }}"]
    """
    assert errors_of(text) == [f"{FILE}:7:24: error: unknown parameter 'reg' (declared: reg_rate)"]


def test_malformed_reference_and_unknown_namespace(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        script: prep.py
        arguments: ["${{ reg }}", "${{env.HOME}}", "${{run.name}}"]
    """
    assert errors_of(text) == [
        f"{FILE}:5:17: error: malformed reference '${{{{ reg }}}}' (write ${{{{parameters.NAME}}}}, "
        "${{data.NAME}}, ${{run.id}} or ${{run.experiment}})",
        f"{FILE}:5:31: error: unknown namespace 'env' in '${{{{env.HOME}}}}' "
        "(known: parameters, data, run)",
        f"{FILE}:5:48: error: unknown run field 'name' (known: id, experiment, nominal_time, "
        "nominal_date, interval_start, interval_end)",
    ]


def test_reference_in_a_field_that_is_not_substituted(errors_of) -> None:
    text = """\
    parameters:
      s: {default: prep.py}
    steps:
      prep:
        type: python_script
        script: "${{parameters.s}}"
    """
    errors = errors_of(text)
    assert errors[0] == (
        f"{FILE}:6:13: error: references are not substituted in 'script' of step 'prep' "
        "(they are substituted in: arguments, environment.variables)"
    )


def test_depends_on_unknown_step_suggests_a_name(errors_of) -> None:
    text = """\
    steps:
      prep: {type: python_script, script: prep.py}
      train:
        type: python_script
        script: train.py
        depends_on: [perp]
    """
    assert errors_of(text) == [
        f"{FILE}:6:18: error: step 'train' depends on unknown step 'perp' (did you mean 'prep'?)"
    ]


def test_cycle_is_named_as_a_path(errors_of) -> None:
    text = """\
    data:
      x: {}
    steps:
      a: {type: python_script, script: prep.py, inputs: [x], depends_on: [c]}
      b: {type: python_script, script: prep.py, outputs: [x], depends_on: [a]}
      c: {type: python_script, script: prep.py}
    """
    assert errors_of(text) == [
        f"{FILE}:4:3: error: steps form a cycle: a -> b -> a "
        "(remove a depends_on or a data dependency)"
    ]


def test_data_produced_by_two_steps(errors_of) -> None:
    text = """\
    data:
      x: {}
    steps:
      a: {type: python_script, script: prep.py, outputs: [x]}
      b: {type: python_script, script: prep.py, outputs: [x]}
    """
    assert errors_of(text) == [
        f"{FILE}:5:55: error: data 'x' is produced by both step 'a' and step 'b' "
        "(each data item has one producer)"
    ]


def test_data_consumed_but_never_produced(errors_of) -> None:
    text = """\
    data:
      x: {}
    steps:
      a:
        type: python_script
        script: prep.py
        arguments: ["${{data.x}}"]
    """
    assert errors_of(text) == [
        f"{FILE}:7:17: error: data 'x' is read by step 'a' but no step produces it "
        "(add 'x' to the outputs of the step that writes it)"
    ]


def test_missing_script_file_suggests_a_close_file(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        script: perp.py
    """
    assert errors_of(text) == [
        f"{FILE}:4:13: error: script 'perp.py' of step 'prep' not found in '.' "
        "(did you mean 'prep.py'?)"
    ]


def test_missing_source_directory(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        source_directory: src
        script: prep.py
    """
    assert errors_of(text) == [
        f"{FILE}:4:23: error: source directory 'src' of step 'prep' does not exist"
    ]


def test_bad_duration(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        script: prep.py
        timeout: 3 fortnights
    """
    assert errors_of(text) == [
        f"{FILE}:5:14: error: 'timeout' in step 'prep': not a duration: '3 fortnights' "
        "(write e.g. 90s, 500ms, 5min, 1h 30min, 1d12h, 2w, or a number of seconds)"
    ]


def test_parameter_default_not_of_its_type(errors_of) -> None:
    text = """\
    parameters:
      epochs: {type: int, default: 2.5}
    steps:
      prep: {type: python_script, script: prep.py}
    """
    assert errors_of(text) == [
        f"{FILE}:2:32: error: default of parameter 'epochs' is not an int (got 2.5) "
        "(change the default, or the parameter's type)"
    ]


def test_path_default_outside_its_datastore(errors_of) -> None:
    text = """\
    parameters:
      raw: {type: path, default: "../secrets"}
    steps:
      prep: {type: python_script, script: prep.py}
    """
    (error,) = errors_of(text)
    assert error.startswith(
        f"{FILE}:2:30: error: default of parameter 'raw': ../secrets leads "
        "outside datastore 'default'"
    )


def test_unknown_datastore_in_data_and_in_a_path(errors_of) -> None:
    text = """\
    data:
      x: {datastore: shared}
    steps:
      prep:
        type: python_script
        script: prep.py
        outputs: [x]
        arguments: ["datastore://archive/2024"]
    """
    assert errors_of(text) == [
        f"{FILE}:2:18: error: unknown datastore 'shared' (configured: default)",
        f"{FILE}:8:17: error: unknown datastore 'archive' (configured: default)",
    ]


def test_unknown_compute_target_names_the_configured_ones(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        script: prep.py
        compute: gpu
    """
    assert errors_of(text) == [
        f"{FILE}:5:14: error: unknown compute target 'gpu' in step 'prep' (configured: local)"
    ]


def test_negative_retries(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        script: prep.py
        retries: -1
    """
    assert errors_of(text) == [
        f"{FILE}:5:14: error: 'retries' in step 'prep' must be greater than or equal to 0 (got -1)"
    ]


def test_duplicate_yaml_key(errors_of) -> None:
    text = """\
    steps:
      prep:
        type: python_script
        script: prep.py
        script: train.py
    """
    assert errors_of(text) == [
        f"{FILE}:5:5: error: duplicate key 'script' (first at line 4) (remove one of them)"
    ]


def test_yaml_syntax_error_at_the_problem_mark(errors_of) -> None:
    text = """\
    steps:
      prep: {type: python_script, script: prep.py
    """
    (error,) = errors_of(text)
    assert error.startswith(f"{FILE}:3:1: error: YAML syntax error:")


def test_empty_file(errors_of) -> None:
    assert errors_of("") == [f"{FILE}: error: the file is empty; it must hold a YAML mapping"]


def test_top_level_list(errors_of) -> None:
    assert errors_of("- a\n- b\n") == [
        f"{FILE}:1:1: error: the top level must be a mapping (key: value lines), not a list"
    ]


def test_wrong_field_of_another_step_type(errors_of) -> None:
    text = """\
    steps:
      move:
        type: data_transfer
        source: datastore://default/in
        destination: datastore://default/out
        mode: mirror
    """
    assert errors_of(text) == [
        f"{FILE}:6:11: error: 'mode' in step 'move' must be 'copy' or 'sync' (got 'mirror')"
    ]


def test_all_errors_of_a_file_at_once_in_file_order(errors_of) -> None:
    text = """\
    data:
      prepped_data: {datastore: nope}
    steps:
      prep:
        type: python_script
        script: prep.py
        retries: -2
        outputs: [prepped_data]
      train:
        type: python_script
        scirpt: train.py
        inputs: [prepped]
    """
    errors = errors_of(text)
    assert [e.split(": error: ")[0] for e in errors] == [
        f"{FILE}:2:29",
        f"{FILE}:7:14",
        f"{FILE}:9:3",
        f"{FILE}:11:5",
        f"{FILE}:12:14",
    ]


def test_an_error_in_one_step_does_not_hide_errors_in_another(errors_of) -> None:
    text = """\
    steps:
      a: {type: nope}
      b: {type: python_script, script: missing.py}
    """
    errors = errors_of(text)
    assert len(errors) == 2
    assert "missing.py" in errors[1]
