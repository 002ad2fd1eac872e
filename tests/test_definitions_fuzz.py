"""Whatever a pipeline.yaml holds, loading it either succeeds or raises DefinitionErrors whose
every error names a file (and a position where there is a node) — never a traceback."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.core.errors import DefinitionErrors
from scheduler.definitions import Pipeline, load_pipeline

try:
    from fixtures_definitions import GOOD_PIPELINE, make_config, write_pipeline
except ImportError:  # tests/ became a package
    from tests.fixtures_definitions import GOOD_PIPELINE, make_config, write_pipeline

BASE = yaml.safe_load(GOOD_PIPELINE)
# PIPESCHED_FUZZ_EXAMPLES raises the count for a deeper run by hand.
EXAMPLES = int(os.environ.get("PIPESCHED_FUZZ_EXAMPLES", "120"))
FIELD_NAMES = [
    "type",
    "script",
    "arguments",
    "inputs",
    "outputs",
    "depends_on",
    "timeout",
    "retries",
    "source_directory",
    "environment",
    "variables",
    "python",
    "compute",
    "default",
    "datastore",
    "steps",
    "data",
    "parameters",
    "name",
    "entry_script",
    "input",
    "output",
    "command",
    "url",
]
TEXTS = [
    "python_script",
    "parallel_run",
    "data_transfer",
    "command",
    "notebook",
    "sql",
    "prep.py",
    "prepped_data",
    "${{data.prepped_data}}",
    "${{parameters.reg_rate}}",
    "${{run.id}}",
    "${{ parameters.nope }}",
    "${{",
    "${{x}}",
    "datastore://default/x",
    "datastore://nope/x",
    "../..",
    "/etc",
    "30m",
    "-1",
    "",
    "prep",
    "train",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.sampled_from(TEXTS),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), scalars), inner, max_size=4),
    ),
    max_leaves=12,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*path, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_paths(item, (*path, i)))
    return found


def _mutate(doc: Any, data: st.DataObject) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 4))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        if not path:
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = data.draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(FIELD_NAMES))] = data.draw(values)
        else:
            parent.append(data.draw(values))
    return doc


def _check(config, text: str) -> None:
    file = write_pipeline(config, "fuzz", "")
    file.write_text(text)
    try:
        result = load_pipeline(file, config)
    except DefinitionErrors as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.file is not None
            assert error.message
            if error.position is not None:
                assert error.position.line >= 1 and error.position.column >= 1
    else:
        assert isinstance(result, Pipeline)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    return make_config(tmp_path)


@FUZZ
@given(data=st.data())
def test_mutated_documents_give_only_definition_errors(config, data: st.DataObject) -> None:
    doc = _mutate(BASE, data)
    _check(config, yaml.safe_dump(doc, sort_keys=False))


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(GOOD_PIPELINE)), st.integers(0, 3), st.text(max_size=4)),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_texts_give_only_definition_errors(config, edits) -> None:
    text = GOOD_PIPELINE
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut :]
    _check(config, text)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#,? \n\t1.")), max_size=60))
def test_random_yamlish_text_gives_only_definition_errors(config, text: str) -> None:
    _check(config, text)
