"""Run parameters: conversion of ``-p NAME=VALUE`` strings, defaults, and datastore confinement
of path parameters by real path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler.core.errors import ParameterError, PathOutsideDatastore
from scheduler.definitions import ParameterDef, load_pipeline
from scheduler.definitions.config import Datastore
from scheduler.definitions.parameters import (
    argv_value,
    resolve_datastore_path,
    resolve_run_parameters,
)

try:
    from fixtures_definitions import make_config, write_pipeline
except ImportError:  # tests/ became a package
    from tests.fixtures_definitions import make_config, write_pipeline

PIPELINE = """\
parameters:
  lr: {type: float, default: 0.01}
  epochs: {type: int}
  verbose: {type: bool, default: false}
  label: {type: str, default: run}
  data: {type: path, default: inbox}
steps:
  s: {type: python_script, script: prep.py}
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    config = make_config(tmp_path)
    pipeline = load_pipeline(write_pipeline(config, "p", PIPELINE), config)
    return pipeline, config.datastores


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, Datastore]:
    (tmp_path / "ds").mkdir()
    (tmp_path / "other").mkdir()
    return {
        "default": Datastore("default", Path(os.path.realpath(tmp_path / "ds"))),
        "other": Datastore("other", Path(os.path.realpath(tmp_path / "other"))),
    }


def test_strings_are_converted_to_declared_types(world) -> None:
    pipeline, datastores = world
    values = resolve_run_parameters(
        pipeline, {"lr": "0.5", "epochs": "10", "verbose": "YES", "label": "x"}, datastores
    )
    assert values == {
        "lr": 0.5,
        "epochs": 10,
        "verbose": True,
        "label": "x",
        "data": "datastore://default/inbox",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("False", False), ("yes", True), ("NO", False), ("1", True), ("0", False)],
)
def test_bool_words(world, text: str, expected: bool) -> None:
    pipeline, datastores = world
    assert (
        resolve_run_parameters(pipeline, {"epochs": 1, "verbose": text}, datastores)["verbose"]
        is expected
    )


def test_typed_values_are_checked_too(world) -> None:
    pipeline, datastores = world
    values = resolve_run_parameters(pipeline, {"epochs": 3, "lr": 1}, datastores)
    assert values["epochs"] == 3 and values["lr"] == 1.0
    with pytest.raises(ParameterError) as info:
        resolve_run_parameters(pipeline, {"epochs": True}, datastores)
    assert info.value.name == "epochs"


def test_bad_number_names_the_parameter(world) -> None:
    pipeline, datastores = world
    with pytest.raises(ParameterError) as info:
        resolve_run_parameters(pipeline, {"epochs": "ten"}, datastores)
    assert info.value.name == "epochs"
    assert str(info.value) == "parameter 'epochs' must be an integer: got 'ten'"


def test_unknown_parameter_suggests_and_lists_declared(world) -> None:
    pipeline, datastores = world
    with pytest.raises(ParameterError) as info:
        resolve_run_parameters(pipeline, {"epoch": "1"}, datastores)
    assert info.value.name == "epoch"
    assert info.value.hint == ("did you mean 'epochs'? declared: data, epochs, label, lr, verbose")


def test_missing_required_parameter(world) -> None:
    pipeline, datastores = world
    with pytest.raises(ParameterError) as info:
        resolve_run_parameters(pipeline, {}, datastores)
    assert info.value.name == "epochs"
    assert info.value.hint == "pass -p epochs=VALUE"


def test_bare_relative_path_is_in_the_default_datastore(stores) -> None:
    canonical, real = resolve_datastore_path("inbox/a.csv", stores)
    assert canonical == "datastore://default/inbox/a.csv"
    assert real == stores["default"].path / "inbox" / "a.csv"


def test_datastore_url_names_its_datastore(stores) -> None:
    canonical, real = resolve_datastore_path("datastore://other/x/y", stores)
    assert canonical == "datastore://other/x/y"
    assert real == stores["other"].path / "x" / "y"


def test_absolute_path_inside_a_datastore_is_made_canonical(stores) -> None:
    path = stores["other"].path / "z"
    assert resolve_datastore_path(str(path), stores) == ("datastore://other/z", path)


def test_dotdot_leading_out_is_refused(stores) -> None:
    with pytest.raises(PathOutsideDatastore) as info:
        resolve_datastore_path("datastore://default/../other/x", stores, name="raw")
    assert info.value.name == "raw"
    assert "raw" in str(info.value)


def test_dotdot_that_stays_inside_is_fine(stores) -> None:
    canonical, _ = resolve_datastore_path("a/../b", stores)
    assert canonical == "datastore://default/b"


def test_absolute_path_outside_every_datastore_is_refused(stores, tmp_path: Path) -> None:
    with pytest.raises(PathOutsideDatastore):
        resolve_datastore_path(str(tmp_path / "elsewhere"), stores, name="raw")


def test_symlink_leading_out_is_refused(stores, tmp_path: Path) -> None:
    (tmp_path / "secret").mkdir()
    (stores["default"].path / "escape").symlink_to(tmp_path / "secret")
    with pytest.raises(PathOutsideDatastore) as info:
        resolve_datastore_path("escape/file", stores, name="raw")
    assert info.value.name == "raw"


def test_symlink_staying_inside_is_fine(stores) -> None:
    (stores["default"].path / "v3").mkdir()
    (stores["default"].path / "latest").symlink_to(stores["default"].path / "v3")
    canonical, real = resolve_datastore_path("latest/model.pkl", stores)
    assert real == stores["default"].path / "v3" / "model.pkl"
    assert canonical == "datastore://default/v3/model.pkl"


def test_target_that_does_not_exist_yet_is_fine(stores) -> None:
    canonical, real = resolve_datastore_path("datastore://default/not/yet/there.csv", stores)
    assert canonical == "datastore://default/not/yet/there.csv"
    assert not real.exists()


def test_unknown_datastore_is_refused(stores) -> None:
    with pytest.raises(ParameterError) as info:
        resolve_datastore_path("datastore://nope/x", stores, name="raw")
    assert info.value.hint == "configured: default, other"


def test_argv_values(stores) -> None:
    assert argv_value(ParameterDef(type="bool"), True, stores) == "True"
    assert argv_value(ParameterDef(type="bool"), False, stores) == "False"
    assert argv_value(ParameterDef(type="float"), 0.5, stores) == "0.5"
    assert argv_value(ParameterDef(type="int"), 3, stores) == "3"
    path = argv_value(ParameterDef(type="path"), "datastore://default/in", stores)
    assert path == str(stores["default"].path / "in")
