"""Shared fixtures: the database backends every store-touching test runs on, and ``wait_until``.

``database_url`` is parametrized over SQLite (a file in ``tmp_path``) and PostgreSQL (when
``PIPESCHED_TEST_DATABASE_URL`` names a server, as ``.ci/run`` sets it; otherwise that half is
skipped with the reason). Each PostgreSQL test gets a database of its own, created from the
server URL and dropped afterwards, so xdist workers never see each other's rows.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
import structlog
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from scheduler.store import Store
from tests import projects

POSTGRES_URL_ENV = "PIPESCHED_TEST_DATABASE_URL"
BACKENDS = ("sqlite", "postgresql")

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _logging_as_found() -> Iterator[None]:
    """Each test starts with logging as the process had it: code that configures logging in
    this process (an in-process ``pipesched run``, a daemon's set-up) must not decide where a
    later test's log lines go."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def wait_until(
    condition: Callable[[], T],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that; fail the test
    with ``message`` if ``timeout`` seconds pass first. Never a bare sleep-and-hope."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(condition, "__qualname__", repr(condition))
            raise AssertionError(f"not true within {timeout}s: {what} (last value {value!r})")
        time.sleep(interval)


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., object]:
    """``wait_until`` for tests that prefer a fixture to an import."""
    return wait_until


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine | None]:
    """An AUTOCOMMIT engine on the test server's maintenance database, or None without one."""
    server = os.environ.get(POSTGRES_URL_ENV)
    if not server:
        yield None
        return
    engine = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path: object, postgres_admin: Engine | None
) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/pipesched.db"
        return
    if postgres_admin is None:
        pytest.skip(f"PostgreSQL: set {POSTGRES_URL_ENV} to a server URL (.ci/run does)")
    name = f"pipesched_t_{uuid.uuid4().hex[:16]}"
    with postgres_admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(os.environ[POSTGRES_URL_ENV]).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with postgres_admin.connect() as conn:
            # FORCE: a test that failed may leave a connection (or a daemon) behind.
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A store at the current schema on each backend."""
    opened = Store.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def daemons():
    """Start real ``pipesched daemon`` subprocesses (tests/daemon_harness.py); every one still
    running is killed when the test ends."""
    from tests.daemon_harness import DaemonProcess

    started: list[DaemonProcess] = []

    def make(project, **kwargs) -> DaemonProcess:
        daemon = DaemonProcess(project, **kwargs)
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.close()


#: Test modules whose steps run in both modes: spawned, and forked from a warm target's zygote.
#: The warm copies are slow-marked: CI runs them in its second stage.
BOTH_STEP_MODES = (
    "test_executor",
    "test_executor_azureml_shim",
    "test_executor_parallel_run",
    "test_executor_parallel_tabular",
    "test_executor_retry_delay",
    "test_executor_reuse",
    "test_executor_step_command",
    "test_executor_step_data_transfer",
    "test_executor_step_notebook",
    "test_executor_step_sql",
    "test_executor_step_variables",
    "test_runtime",
    "test_runtime_models",
    "test_cli_run_foreground",
)

#: Tests whose steps set their own ``PYTHONPATH``: a warm target spawns such steps.
SPAWNED_ON_PURPOSE = frozenset(
    {
        "test_a_real_azureml_on_the_steps_pythonpath_wins",
        "test_the_stand_in_keeps_the_steps_own_sitecustomize",
        "test_without_nbclient_the_step_says_what_to_install",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rpartition(".")[2] in BOTH_STEP_MODES:
        metafunc.fixturenames.append("step_mode")
        metafunc.parametrize("step_mode", ["spawn", pytest.param("warm", marks=pytest.mark.slow)])


@pytest.fixture(autouse=True)
def _in_step_mode(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """``step_mode`` ``warm``: every project's local target lists ``warm_imports`` and a run
    forks even a single step; afterwards, a zygote that was started must have forked what it
    could. Autouse, so that it is in place before the fixtures that make projects."""
    callspec = getattr(request.node, "callspec", None)
    mode = callspec.params.get("step_mode") if callspec is not None else None
    if mode is None:
        yield
        return
    from scheduler.compute.warm import active_pool  # lazy: only the two-mode modules need it
    from scheduler.executor import warmpool  # lazy: as above

    if mode == "warm":
        monkeypatch.setattr(projects, "WARM_LOCAL", {"warm_imports": ["json"]})
        monkeypatch.setattr(warmpool, "MIN_FOREGROUND_STEPS", 1)
    try:
        yield
        pool = active_pool()
        spawns = request.node.originalname in SPAWNED_ON_PURPOSE
        if mode == "warm" and pool is not None and not spawns:
            rows = pool.describe()
            assert all(r["forked"] > 0 or r["spawned"] == 0 for r in rows), rows
    finally:
        warmpool.stop_warm_pool()
