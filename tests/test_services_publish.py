"""Published pipelines: immutable snapshots, version labels, the endpoint's default version,
running a published version, schedules naming NAME@VERSION, and the CLI around them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
from pathlib import Path

import pytest

from scheduler.core.errors import NotFound, PipeschedError
from scheduler.daemon.schedule_set import load_schedule_set
from scheduler.definitions.config import ApiConfig, TlsConfig
from scheduler.definitions.fingerprint import source_tree_hash
from scheduler.dispatch.submit import content_hash, submit_run
from scheduler.executor import ExecutionOptions, RunExecutor
from scheduler.services.publish import (
    default_version,
    endpoint_url,
    get_version,
    list_versions,
    load_published,
    publish,
    set_default_version,
)
from tests.projects import Project, make_project

ECHO = """
steps:
  say:
    type: python_script
    script: say.py
    arguments: ["${{data.out}}"]
    outputs: [out]
data:
  out: {}
"""
SAY = """
import pathlib, sys
pathlib.Path(sys.argv[1], "said.txt").write_text({word!r})
"""


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Project:
    project = make_project(
        tmp_path, database_url=None if database_url.startswith("sqlite") else database_url
    )
    project.pipeline("echo", ECHO, {"say.py": SAY.format(word="old")})
    return project


def run_loaded(project: Project, pipeline, version: str | None):
    """Record and execute a run in-process, as tests/test_executor.py does."""
    config = project.config()
    with project.store() as store:
        run = submit_run(config, store, pipeline, {}, version=version)
        executor = RunExecutor(
            config=config,
            store=store,
            pipeline=pipeline,
            run=run,
            options=ExecutionOptions(kill_grace=0.5),
        )
        asyncio.run(executor.execute())
        return store.get_run_detail(run.id)


def said(detail) -> str:
    step = next(s for s in detail.to_json()["steps"] if s["name"] == "say")
    return (Path(step["outputs"]["out"]) / "said.txt").read_text()


def publish_echo(project: Project, **kwargs):
    with project.store() as store:
        return publish(project.config(), store, "echo", **kwargs)


# -- labels and defaults --------------------------------------------------------------------


def test_versions_default_to_the_next_integer_and_the_first_is_the_default(project) -> None:
    first, second = publish_echo(project), publish_echo(project)
    assert (first.version, second.version) == ("1", "2")
    assert first.is_default and not second.is_default
    with project.store() as store:
        assert default_version(store, "echo") == "1"
        assert [v.version for v in list_versions(store, "echo")] == ["1", "2"]


def test_next_integer_skips_past_named_labels(project) -> None:
    publish_echo(project, version="beta")
    publish_echo(project, version="7")
    assert publish_echo(project).version == "8"


def test_republishing_a_label_is_refused_and_leaves_the_snapshot_alone(project) -> None:
    first = publish_echo(project, version="v1", description="first")
    script = first.snapshot_dir / "files" / "echo" / "say.py"
    before = script.read_text()
    (project.root / "pipelines" / "echo" / "say.py").write_text("print('changed')\n")
    with pytest.raises(
        PipeschedError,
        match="already has a published version 'v1' with different content; "
        "the next free label is 'v2'",
    ):
        publish_echo(project, version="v1")
    assert script.read_text() == before
    with project.store() as store:
        assert get_version(store, "echo", "v1").description == "first"


def test_bad_version_label_is_refused(project) -> None:
    with pytest.raises(PipeschedError, match="bad version label"):
        publish_echo(project, version="../x")


def test_set_default_version_moves_the_endpoint(project) -> None:
    publish_echo(project)
    publish_echo(project)
    with project.store() as store:
        set_default_version(store, "echo", "2")
        assert default_version(store, "echo") == "2"
        assert [v.is_default for v in list_versions(store, "echo")] == [False, True]
        with pytest.raises(NotFound):
            set_default_version(store, "echo", "9")


def test_unknown_version_is_not_found(project) -> None:
    with project.store() as store, pytest.raises(NotFound):
        get_version(store, "echo", "1")


# -- immutability and running ------------------------------------------------------------------


def test_published_version_keeps_running_the_old_script_after_edits(project) -> None:
    published = publish_echo(project)
    (project.root / "pipelines" / "echo" / "say.py").write_text(SAY.format(word="new"))
    with project.store() as store:
        pipeline, label = load_published(project.config(), store, "echo", "1")
    detail = run_loaded(project, pipeline, label)
    assert detail.run.status == "completed"
    assert said(detail) == "old"
    assert (detail.run.version, detail.run.content_hash) == ("1", published.content_hash)
    working = run_loaded(project, project.load("echo"), None)
    assert said(working) == "new"
    assert working.run.version is None


def test_without_a_version_the_endpoint_default_runs_else_the_working_copy(project) -> None:
    config = project.config()
    with project.store() as store:
        pipeline, label = load_published(config, store, "echo", None)
        assert label is None and pipeline.directory == project.root / "pipelines" / "echo"
        publish(config, store, "echo")
        pipeline, label = load_published(config, store, "echo", None)
    assert label == "1"
    assert pipeline.directory.is_relative_to(config.state_dir / "published")


def test_snapshot_files_are_read_only(project) -> None:
    published = publish_echo(project)
    script = published.snapshot_dir / "files" / "echo" / "say.py"
    assert not os.access(script, os.W_OK) or os.geteuid() == 0
    assert script.stat().st_mode & 0o222 == 0


def test_snapshot_leaves_out_what_the_fingerprint_ignores_and_hashes_the_same(project) -> None:
    folder = project.root / "pipelines" / "echo"
    (folder / ".gitignore").write_text("*.bin\n")
    (folder / "big.bin").write_text("ignored")
    (folder / ".env").write_text("SECRET=1")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "say.cpython.pyc").write_text("x")
    (folder / "lib").mkdir()
    (folder / "lib" / "helper.py").write_text("X = 1\n")
    copy = publish_echo(project).snapshot_dir / "files" / "echo"
    assert (copy / "lib" / "helper.py").is_file()
    assert not (copy / "big.bin").exists()
    assert not (copy / ".env").exists()
    assert not (copy / "__pycache__").exists()
    assert source_tree_hash(copy) == source_tree_hash(folder)


def test_source_directory_outside_the_pipeline_folder_is_snapshotted(project) -> None:
    shared = project.root / "shared"
    shared.mkdir()
    (shared / "say.py").write_text(SAY.format(word="shared-old"))
    project.pipeline(
        "echo", ECHO.replace("script: say.py", "script: say.py\n    source_directory: ../../shared")
    )
    published = publish_echo(project)
    (shared / "say.py").write_text(SAY.format(word="shared-new"))
    with project.store() as store:
        pipeline, label = load_published(project.config(), store, "echo", "1")
    assert Path(pipeline.steps["say"].source_directory).is_relative_to(published.snapshot_dir)
    assert said(run_loaded(project, pipeline, label)) == "shared-old"


def test_content_hash_is_the_snapshots_run_hash(project) -> None:
    published = publish_echo(project)
    with project.store() as store:
        pipeline, _ = load_published(project.config(), store, "echo", "1")
    assert content_hash(pipeline) == published.content_hash


# -- endpoint URLs ------------------------------------------------------------------------------


def test_endpoint_urls_follow_design(tmp_path: Path) -> None:
    config = make_project(tmp_path, api={"host": "127.0.0.1", "port": 8790}).config()
    assert (
        endpoint_url(config, "train", "2")
        == "http://127.0.0.1:8790/api/v1/pipelines/train/versions/2/runs"
    )
    assert (
        endpoint_url(config, "train", None) == "http://127.0.0.1:8790/api/v1/pipelines/train/runs"
    )


def test_endpoint_url_uses_https_with_tls_and_the_host_name_for_a_wildcard(tmp_path: Path) -> None:
    config = make_project(tmp_path).config()
    tls = TlsConfig(cert=tmp_path / "c.pem", key=tmp_path / "k.pem")
    wild = dataclasses.replace(config, api=ApiConfig(host="0.0.0.0", port=443, tls=tls))
    assert endpoint_url(wild, "train", "1") == (
        f"https://{socket.gethostname()}:443/api/v1/pipelines/train/versions/1/runs"
    )


# -- schedules ----------------------------------------------------------------------------------


def test_schedule_naming_name_at_version_loads_the_snapshot(project) -> None:
    published = publish_echo(project)
    project.schedules(
        """
        schedules:
          - {name: pinned, pipeline: echo@1, cron: "0 0 * * *"}
          - {name: live, pipeline: echo, cron: "0 0 * * *"}
        """
    )
    loaded = load_schedule_set(project.config_path, strict=True)
    pinned, live = loaded.schedules["pinned"], loaded.schedules["live"]
    assert loaded.pipeline_for(pinned).directory.is_relative_to(published.snapshot_dir)
    assert loaded.pipeline_for(live).directory == project.root / "pipelines" / "echo"
    assert (loaded.version_for(pinned), loaded.version_for(live)) == ("1", None)


def test_schedule_naming_an_unpublished_version_is_an_error(project) -> None:
    project.schedules('schedules:\n  - {name: pinned, pipeline: echo@3, cron: "0 0 * * *"}\n')
    loaded = load_schedule_set(project.config_path, strict=False)
    assert "pinned" not in loaded.schedules
    assert any("no published version '3'" in str(e) for e in loaded.errors)


# -- command line -------------------------------------------------------------------------------


def test_cli_publish_prints_the_version_and_its_endpoint(project) -> None:
    result = project.cli("publish", "echo", "--description", "first cut")
    assert result.returncode == 0, result.stderr
    assert "published echo@1" in result.stdout
    assert "/api/v1/pipelines/echo/versions/1/runs" in result.stdout
    same = project.cli("publish", "echo", "--version", "1")
    assert same.returncode == 0, same.stderr  # the same content: that version, unchanged
    assert "published echo@1" in same.stdout
    (project.root / "pipelines" / "echo" / "say.py").write_text("print('changed')\n")
    again = project.cli("publish", "echo", "--version", "1")
    assert again.returncode == 1
    assert "already has a published version '1' with different content" in again.stderr
    assert "the next free label is '2'" in again.stderr


def test_cli_publish_json(project) -> None:
    result = project.cli("publish", "echo", "--version", "v2", "--json")
    document = json.loads(result.stdout)
    assert document["id"] == "echo@v2" and document["is_default"] is True
    assert document["url"].endswith("/api/v1/pipelines/echo/versions/v2/runs")


def test_cli_pipelines_lists_versions_default_and_endpoints(project) -> None:
    publish_echo(project)
    publish_echo(project, version="beta")
    listed = {p["name"]: p for p in json.loads(project.cli("pipelines", "--json").stdout)}
    echo = listed["echo"]
    assert echo["default_version"] == "1"
    assert [(v["version"], v["is_default"]) for v in echo["versions"]] == [
        ("1", True),
        ("beta", False),
    ]
    assert echo["versions"][1]["url"].endswith("/pipelines/echo/versions/beta/runs")
    assert echo["endpoint"].endswith("/api/v1/pipelines/echo/runs")
    row = project.cli("pipelines", "--no-headers").stdout.splitlines()[0].split()
    assert row[:4] == ["echo", "1", "1*", "beta"]


def test_cli_pipelines_lists_a_pipeline_whose_working_copy_is_gone(project) -> None:
    publish_echo(project)
    for path in (project.root / "pipelines" / "echo").iterdir():
        path.unlink()
    (project.root / "pipelines" / "echo").rmdir()
    listed = {p["name"]: p for p in json.loads(project.cli("pipelines", "--json").stdout)}
    assert listed["echo"]["status"] == "published"
    assert listed["echo"]["default_version"] == "1"


def test_a_folder_left_by_a_crashed_publish_is_replaced(project) -> None:
    leftover = project.state_dir / "published" / "echo" / "1"
    leftover.mkdir(parents=True)
    (leftover / "published.json").write_text("{}")
    published = publish_echo(project)
    assert published.version == "1"
    assert (published.snapshot_dir / "files" / "echo" / "say.py").is_file()


def test_racing_publishes_of_one_label_record_it_once(project) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def attempt(_: int) -> str:
        try:
            return publish_echo(project, version="race").version
        except PipeschedError:
            return "refused"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(attempt, range(4)))
    # The same content each time: every publish gets the one version, recorded once.
    assert outcomes == ["race", "race", "race", "race"]
    with project.store() as store:
        assert [v.version for v in list_versions(store, "echo")] == ["race"]
