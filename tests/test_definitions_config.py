"""The daemon config: found in the documented order, defaults resolved relative to the file,
mistakes reported as file:line:col, nothing created on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler.core.errors import ConfigNotFound, DefinitionErrors
from scheduler.definitions.config import find_config, load_config
from tests.projects import shipped


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("PIPESCHED_CONFIG", raising=False)


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "etc").mkdir(exist_ok=True)
    file = tmp_path / "etc" / "pipesched.yaml"
    file.write_text(text)
    return file


def errors(file: Path) -> list[str]:
    with pytest.raises(DefinitionErrors) as info:
        load_config(file)
    return [str(e) for e in info.value.errors]


def test_shipped_config_loads() -> None:
    root = shipped()  # a pristine copy: the working config/ is the user's
    config = load_config(root / "config" / "pipesched.yaml")
    assert config.state_dir == root / "var"
    assert config.pipelines_dir == root / "pipelines"
    assert config.schedules_file == root / "config" / "schedules.yaml"
    assert config.database_url == f"sqlite:///{root / 'var' / 'pipesched.db'}"
    assert config.compute["local"].max_workers == 4
    assert config.api.host == "127.0.0.1" and config.api.port == 8790
    assert config.shutdown_grace == 10.0


def test_defaults_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "{}\n"))
    real = Path(os.path.realpath(tmp_path))
    assert config.state_dir == tmp_path / "var"
    assert config.runs_dir == tmp_path / "var" / "runs"
    assert config.pipelines_dir == tmp_path / "pipelines"
    assert config.schedules_file == tmp_path / "etc" / "schedules.yaml"
    assert config.datastores["default"].path == real / "var" / "datastore"
    assert config.compute["local"].type == "local"
    assert config.compute["local"].max_workers == (os.cpu_count() or 1)
    assert config.max_concurrent_runs == 8
    assert (config.logging.format, config.logging.level) == ("auto", "info")


def test_state_directory_from_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    config = load_config(write(tmp_path, "database: null\n"))
    assert config.state_dir == tmp_path / "state"
    assert config.database_url == f"sqlite:///{tmp_path / 'state' / 'pipesched.db'}"


def test_explicit_state_dir_wins_over_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    config = load_config(write(tmp_path, "state_dir: ../mine\n"))
    assert config.state_dir == tmp_path / "mine"


def test_loading_creates_no_directories(tmp_path: Path) -> None:
    load_config(write(tmp_path, "{}\n"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["etc"]


def test_datastore_paths_are_real_paths(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    config = load_config(write(tmp_path, "datastores:\n  default: {path: ../link}\n"))
    assert config.datastores["default"].path == Path(os.path.realpath(tmp_path / "real"))


def test_a_default_datastore_is_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    file = write(tmp_path, "datastores:\n  other: {path: /tmp}\n")
    assert errors(file) == [
        "etc/pipesched.yaml:2:3: error: there must be a datastore named 'default' "
        "(add  default: {path: null}  under datastores)"
    ]


def test_mistakes_are_reported_at_their_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    file = write(tmp_path, "shutdown_grace: soon\napi: {port: 70000}\nloging: {}\n")
    assert errors(file) == [
        "etc/pipesched.yaml:1:17: error: 'shutdown_grace' in the config: not a duration: 'soon' "
        "(write e.g. 90s, 500ms, 5min, 1h 30min, 1d12h, 2w, or a number of seconds)",
        "etc/pipesched.yaml:2:13: error: 'api.port' in the config must be less than or equal to "
        "65535 (got 70000)",
        "etc/pipesched.yaml:3:1: error: unknown key 'loging' in the config (did you mean 'logging'?)",
    ]


def test_dask_target_needs_an_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    file = write(tmp_path, "compute:\n  cluster: {type: dask}\n")
    assert errors(file) == [
        "etc/pipesched.yaml:2:3: error: compute target 'cluster' of type dask needs an 'address' "
        '(e.g. address: "tcp://host:8786")'
    ]


def test_remote_api_without_tls_is_refused_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(DefinitionErrors):
        load_config(write(tmp_path, "api: {host: 0.0.0.0}\n"))
    config = load_config(write(tmp_path, "api: {host: 0.0.0.0, allow_insecure_remote: true}\n"))
    assert config.api.host == "0.0.0.0"


def test_find_config_prefers_explicit_then_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = write(tmp_path, "{}\n")
    env = tmp_path / "env.yaml"
    env.write_text("{}\n")
    (tmp_path / "config").mkdir()
    local = tmp_path / "config" / "pipesched.yaml"
    local.write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPESCHED_CONFIG", str(env))
    assert find_config(str(explicit)) == explicit
    assert find_config(None) == env
    monkeypatch.delenv("PIPESCHED_CONFIG")
    assert find_config(None) == local


def test_find_config_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFound):
        find_config(str(tmp_path / "nope.yaml"))


def test_find_config_nothing_found_hints_at_dash_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if Path("/etc/pipesched/pipesched.yaml").exists():
        pytest.skip("a system-wide config exists on this machine")
    with pytest.raises(ConfigNotFound) as info:
        find_config(None)
    assert "-c" in (info.value.hint or "")
