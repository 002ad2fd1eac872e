"""Secrets: ``${{env.NAME}}`` and ``${{file:PATH}}`` in step fields, parameters and the config's
``database``. Definitions and records keep the reference; only a starting step's process gets the
value; a run whose secret is missing is refused before anything is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors, ParameterError, PipeschedError
from scheduler.core.secrets import (
    MASK,
    SECRETS_VARIABLE,
    SecretMissing,
    mask_secrets,
    references_in,
    resolve_references,
    resolve_secrets,
    reveal,
    reveal_from_environment,
)
from scheduler.definitions.templating import TemplateSyntaxError, scan, substitute
from scheduler.dispatch.submit import submit_run
from tests.projects import Project, make_project

SECRET = "hunter2-correct-horse"


# -- the resolver -----------------------------------------------------------------------------


def test_an_env_reference_takes_the_variables_value_and_a_missing_one_is_named_without_values():
    assert resolve_secrets("u:${{env.DB_PW}}@h", environ={"DB_PW": SECRET}) == f"u:{SECRET}@h"
    with pytest.raises(SecretMissing) as missing:
        resolve_secrets("${{ env.DB_PW }}", environ={"OTHER": SECRET})
    assert "${{ env.DB_PW }}" in missing.value.message
    assert "DB_PW is not set" in missing.value.message
    assert SECRET not in str(missing.value)


def test_a_relative_file_is_read_from_the_credentials_directory_without_its_final_newline(
    tmp_path: Path,
):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "db-url").write_text(SECRET + "\n")
    (tmp_path / "db-url").write_text("the base folder's copy\n")
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    assert resolve_secrets("${{file:db-url}}", environ=env, base=tmp_path) == SECRET
    # Without $CREDENTIALS_DIRECTORY a relative path is read from the base folder.
    assert (
        resolve_secrets("${{file:db-url}}", environ={}, base=tmp_path) == "the base folder's copy"
    )
    with pytest.raises(SecretMissing, match=r"\$\{\{file:nope\}\}: cannot read"):
        resolve_secrets("${{file:nope}}", environ=env, base=tmp_path)


def test_a_shown_text_has_each_reference_masked_and_references_are_found_in_nested_values(
    tmp_path: Path,
):
    assert mask_secrets("postgresql://app:${{env.PW}}@db/x") == f"postgresql://app:{MASK}@db/x"
    assert mask_secrets("no secret here") == "no secret here"
    spec = {"url": "sqlite:///${{file:where}}", "parameters": {"pw": "${{env.PW}}"}, "n": 3}
    assert references_in(spec) == {"${{file:where}}", "${{env.PW}}"}
    (tmp_path / "where").write_text("/data/x.db\n")
    values = resolve_references(sorted(references_in(spec)), environ={"PW": "x"}, base=tmp_path)
    assert values == {"${{env.PW}}": "x", "${{file:where}}": "/data/x.db"}


def test_a_runner_reads_its_spec_with_the_values_its_parent_passed_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
):
    spec = {"url": "sqlite:///${{env.WHERE}}", "args": ["--pw", "${{env.PW}}"], "n": 1}
    values = {"${{env.WHERE}}": "/data/x.db", "${{env.PW}}": SECRET}
    monkeypatch.setenv(SECRETS_VARIABLE, json.dumps(values))
    monkeypatch.delenv("PW", raising=False)
    assert reveal_from_environment(spec) == {
        "url": "sqlite:////data/x.db",
        "args": ["--pw", SECRET],
        "n": 1,
    }
    assert reveal(spec, values)["args"][1] == SECRET
    # Text that reached a field from elsewhere is never read as a secret.
    monkeypatch.setenv("HOME_SECRET", SECRET)
    assert reveal("experiment ${{env.HOME_SECRET}}", values) == "experiment ${{env.HOME_SECRET}}"


# -- templating -------------------------------------------------------------------------------


def test_the_template_scanner_steps_over_secrets_and_substitution_keeps_them_as_written():
    text = "--pw=${{env.PW}} --in ${{parameters.src}} --key ${{file:api key}}"
    assert [(r.namespace, r.name) for r in scan(text)] == [("parameters", "src")]
    assert substitute(text, {"parameters": {"src": "/d"}}) == (
        "--pw=${{env.PW}} --in /d --key ${{file:api key}}"
    )
    with pytest.raises(TemplateSyntaxError, match=r"\$\{\{env.NAME\}\}"):
        scan("${{ nope }}")


# -- validation and submit --------------------------------------------------------------------

PIPELINE = """
name: uses-secrets
parameters:
  token: {type: str, default: "${{env.API_TOKEN}}"}
steps:
  call:
    type: python_script
    script: call.py
    arguments: [--token, "${{parameters.token}}", --db, "${{file:db-path}}"]
    environment: {variables: {API_KEY: "${{env.API_KEY}}"}}
  load:
    type: sql
    url: "sqlite:///${{file:db-path}}"
    script: load.sql
"""


def secret_project(root: Path) -> Project:
    project = make_project(root)
    project.pipeline(
        "uses-secrets",
        PIPELINE,
        {"call.py": "print('ok')\n", "load.sql": "SELECT 1;\n"},
    )
    return project


def test_validate_accepts_secret_references_without_their_values_being_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.delenv("API_TOKEN", raising=False)
    project = secret_project(tmp_path)
    pipeline = project.load("uses-secrets")
    assert pipeline.steps["call"].environment.variables["API_KEY"] == "${{env.API_KEY}}"


def test_a_secret_in_a_field_that_is_not_substituted_is_a_definition_error(tmp_path: Path):
    project = make_project(tmp_path)
    project.pipeline(
        "bad",
        "name: bad\nsteps:\n  s: {type: python_script, script: '${{env.SCRIPT}}'}\n",
    )
    with pytest.raises(DefinitionErrors, match="references are not substituted in 'script'"):
        project.load("bad")


def test_a_missing_secret_at_submit_is_an_error_naming_it_and_nothing_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("API_TOKEN", "t")
    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    project = secret_project(tmp_path)
    pipeline = project.load("uses-secrets")
    (pipeline.directory / "db-path").write_text(str(tmp_path / "x.db"))
    with project.store() as store:
        with pytest.raises(SecretMissing, match=r"\$\{\{env.API_KEY\}\}"):
            submit_run(project.config(), store, pipeline, {})
        monkeypatch.setenv("API_KEY", SECRET)
        with pytest.raises(SecretMissing, match=r"\$\{\{env.GIVEN\}\}"):
            submit_run(project.config(), store, pipeline, {"token": "${{env.GIVEN}}"})
        assert store.list_runs(limit=0) == []
        (pipeline.directory / "db-path").unlink()
        with pytest.raises(SecretMissing, match=r"\$\{\{file:db-path\}\}"):
            submit_run(project.config(), store, pipeline, {})
        assert store.list_runs(limit=0) == []


def test_a_run_records_the_reference_and_every_view_shows_it_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("API_TOKEN", SECRET)
    monkeypatch.setenv("API_KEY", SECRET)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    (tmp_path / "db-path").write_text(str(tmp_path / "x.db"))
    project = secret_project(tmp_path / "p")
    pipeline = project.load("uses-secrets")
    with project.store() as store:
        run = submit_run(project.config(), store, pipeline, {})
        assert run.parameters == {"token": "${{env.API_TOKEN}}"}
        detail = store.get_run_detail(run.id)
    assert detail.to_json()["parameters"] == {"token": MASK}
    assert run.shown_parameters() == {"token": MASK}


# -- the config's database URL ----------------------------------------------------------------


def test_the_database_url_takes_its_secret_at_load_and_shows_only_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    database = tmp_path / "secret-place" / "store.db"
    monkeypatch.setenv("STORE_PATH", str(database))
    project = make_project(tmp_path, database_url="sqlite:///${{env.STORE_PATH}}")
    config = project.config()
    assert config.database_url == f"sqlite:///{database}"
    assert config.database_shown == "sqlite:///${{env.STORE_PATH}}"


def test_a_plain_database_url_is_shown_without_its_password(tmp_path: Path):
    project = make_project(tmp_path, database_url="postgresql+psycopg://app:pw1@db.example/x")
    assert project.config().database_shown == "postgresql+psycopg://app:***@db.example/x"


def test_a_missing_database_secret_is_a_config_error_at_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("STORE_PASSWORD", raising=False)
    project = make_project(
        tmp_path, database_url="postgresql+psycopg://app:${{env.STORE_PASSWORD}}@db/x"
    )
    with pytest.raises(DefinitionErrors) as errors:
        project.config()
    text = str(errors.value)
    line = next(
        number
        for number, content in enumerate(project.config_path.read_text().splitlines(), 1)
        if content.startswith("database:")
    )
    assert f"{project.config_path}:{line}:" in text
    assert "${{env.STORE_PASSWORD}}" in text and "STORE_PASSWORD is not set" in text


def notebook_pipeline(name: str, injected: str) -> str:
    return (
        f"name: {name}\n"
        "parameters:\n"
        "  key: {type: str, default: plain}\n"
        "steps:\n"
        f"  s: {{type: notebook, notebook: n.ipynb, parameters: {{key: '{injected}'}}}}\n"
    )


def test_a_secret_never_reaches_a_notebook_parameter_whose_executed_copy_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("NB_KEY", SECRET)
    project = make_project(tmp_path)
    notebook = {"n.ipynb": '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'}
    project.pipeline("literal", notebook_pipeline("literal", "${{env.NB_KEY}}"), notebook)
    project.pipeline("given", notebook_pipeline("given", "${{parameters.key}}"), notebook)
    with pytest.raises(DefinitionErrors, match="a secret cannot be a notebook parameter"):
        project.load("literal")
    pipeline = project.load("given")
    with project.store() as store:
        with pytest.raises(PipeschedError, match="parameter 'key' holds a secret"):
            submit_run(project.config(), store, pipeline, {"key": "${{env.NB_KEY}}"})
        assert store.list_runs(limit=0) == []


def test_the_reuse_fingerprint_goes_by_the_reference_not_the_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A rotated password must not make every step run again: the fingerprint holds the
    reference (``allow_reuse: false`` is the way to always run a step)."""
    from scheduler.executor.values import StepValues  # lazy: the executor, for this test only

    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    (tmp_path / "db-path").write_text("/data/x.db")
    project = secret_project(tmp_path / "p")
    pipeline = project.load("uses-secrets")
    fingerprints = []
    for value in ("first", "rotated"):
        monkeypatch.setenv("API_TOKEN", value)
        monkeypatch.setenv("API_KEY", value)
        with project.store() as store:
            run = submit_run(project.config(), store, pipeline, {})
        values = StepValues(project.config(), pipeline, run)
        fingerprints.append(values.fingerprint("call", []))
    assert fingerprints[0] == fingerprints[1]


def test_a_path_parameter_never_names_a_secret_so_a_dropped_files_name_cannot_read_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("API_KEY", SECRET)
    project = make_project(tmp_path)
    project.pipeline(
        "inbox",
        "name: inbox\n"
        "parameters:\n"
        "  src: {type: path}\n"
        "steps:\n"
        "  s: {type: python_script, script: s.py, arguments: ['${{parameters.src}}']}\n",
        {"s.py": "print('ok')\n"},
    )
    pipeline = project.load("inbox")
    dropped = str(project.datastore / "inbox" / "${{env.API_KEY}}.csv")
    with project.store() as store:
        with pytest.raises(ParameterError, match="parameter 'src' is a path and names a secret"):
            submit_run(project.config(), store, pipeline, {"src": dropped})
        assert store.list_runs(limit=0) == []
