"""A real Dask cluster as a compute target: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1, started once for this module.

The workers run in a mount namespace of their own where ``<base>/hidden`` is covered by an empty
tmpfs: a datastore under it exists for the executor but not for the workers, as for a worker on
another machine that lacks the shared mount.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from scheduler.core.procinfo import is_alive
from tests.conftest import wait_until
from tests.projects import Project, make_project
from tests.test_executor import execute, steps_of

pytest.importorskip("distributed")

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Cluster:
    address: str
    base: Path
    hidden: Path | None  # a folder the workers cannot see, when namespaces are available
    worker_pids: list[int]


def _namespace_prefix(hidden: Path) -> list[str] | None:
    """``unshare`` argv that runs a command with ``hidden`` covered by an empty tmpfs."""
    if shutil.which("unshare") is None:
        return None
    flags = ["--mount"] if os.geteuid() == 0 else ["--mount", "--map-root-user"]
    cover = 'mount -t tmpfs tmpfs "$0" && exec "$@"'
    prefix = ["unshare", *flags, "sh", "-c", cover, str(hidden)]
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("dask")
    hidden = base / "hidden"
    hidden.mkdir()
    # The workers import this checkout's pipesched, as an installed one would on a real cluster.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    scheduler_file = base / "scheduler.json"
    logs = []
    procs = []

    def start(argv: list[str], name: str) -> subprocess.Popen:
        log = open(base / f"{name}.log", "w")  # noqa: SIM115 - closed at teardown
        logs.append(log)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base)
        procs.append(proc)
        return proc

    dask = [sys.executable, "-m", "dask"]
    start(
        [
            *dask,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        "scheduler",
    )
    try:
        address = wait_until(
            lambda: _address(scheduler_file), timeout=30, message="the Dask scheduler started"
        )
        prefix = _namespace_prefix(hidden) or []
        for i in (1, 2):
            start(
                [
                    *prefix,
                    *dask,
                    "worker",
                    address,
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--name",
                    f"w{i}",
                    "--local-directory",
                    str(base / f"w{i}"),
                ],
                f"worker{i}",
            )
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            pids = list(client.run(os.getpid).values())
        yield Cluster(address, base, hidden if prefix else None, pids)
    finally:
        # Workers first: a worker whose scheduler is gone takes seconds longer to close.
        for group in (procs[1:], procs[:1]):
            for proc in group:
                proc.terminate()
            for proc in group:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for log in logs:
            log.close()


def _address(scheduler_file: Path) -> str | None:
    """The scheduler's address once it has written the whole file (it is not written atomically)."""
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


def dask_project(root: Path, cluster: Cluster) -> Project:
    project = make_project(root)
    config = yaml.safe_load(project.config_path.read_text())
    config["compute"]["cluster"] = {"type": "dask", "address": cluster.address}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def log_of(detail, step: str) -> str:
    attempt = [a for a in detail.attempts if a.step == step][-1]
    return Path(attempt.log_path).read_text()


# ---- parallel_run on the cluster -----------------------------------------------------------

ENTRY = """
import os, sys
marks = None
def init():
    global marks
    marks = sys.argv[1]
    open(os.path.join(marks, f"init-{os.getpid()}"), "x").close()
def run(mini_batch):
    return [f"{os.path.basename(f)} {os.getpid()}" for f in mini_batch]
"""


def parallel_on_dask(project: Project, marks: Path, **fields: object) -> None:
    inbox = project.datastore / "inbox"
    inbox.mkdir(parents=True)
    for i in range(24):
        (inbox / f"f{i:03d}.txt").write_text(str(i))
    step = {
        "type": "parallel_run",
        "compute": "cluster",
        "entry_script": "entry.py",
        "input": "${{parameters.input_path}}",
        "output": "results",
        "mini_batch_size": 2,
        "run_max_try": 1,
        "arguments": [str(marks)],
        **fields,
    }
    project.pipeline(
        "par",
        {
            "parameters": {"input_path": {"type": "path", "default": "inbox"}},
            "data": {"results": {}},
            "steps": {"score": step},
        },
        {"entry.py": ENTRY},
    )


def rows_of(detail) -> list[str]:
    folder = Path(steps_of(detail)["score"]["outputs"]["results"])
    return (folder / "parallel_run_step.txt").read_text().splitlines()


def test_parallel_run_spreads_over_both_workers_with_one_init_each(
    cluster: Cluster, tmp_path: Path
):
    project = dask_project(tmp_path / "p", cluster)
    marks = tmp_path / "marks"
    marks.mkdir()
    parallel_on_dask(project, marks, node_count=2)
    detail = execute(project, "par")
    assert detail.run.status == "completed", log_of(detail, "score")
    rows = rows_of(detail)
    assert [r.split()[0] for r in rows] == [f"f{i:03d}.txt" for i in range(24)]
    used = {int(r.split()[1]) for r in rows}
    inits = sorted(int(p.name.removeprefix("init-")) for p in marks.iterdir())
    assert sorted(used) == inits  # init() once in each worker process that ran a mini-batch
    assert set(inits) <= set(cluster_pids(cluster))
    assert len(inits) == 2


def test_node_count_one_keeps_to_a_single_worker(cluster: Cluster, tmp_path: Path):
    project = dask_project(tmp_path / "p", cluster)
    marks = tmp_path / "marks"
    marks.mkdir()
    parallel_on_dask(project, marks, node_count=1)
    detail = execute(project, "par")
    assert detail.run.status == "completed", log_of(detail, "score")
    assert len({r.split()[1] for r in rows_of(detail)}) == 1
    assert len(list(marks.iterdir())) == 1


def test_run_invocation_timeout_on_dask_replaces_the_worker(cluster: Cluster, tmp_path: Path):
    project = dask_project(tmp_path / "p", cluster)
    marks = tmp_path / "marks"
    marks.mkdir()
    entry = ENTRY.replace(
        "def run(mini_batch):",
        "def run(mini_batch):\n"
        "    import time\n"
        "    hung = os.path.join(marks, 'hung')\n"
        "    if mini_batch[0].endswith('f004.txt') and not os.path.exists(hung):\n"
        "        open(hung, 'w').close()\n"
        "        time.sleep(120)",
    )
    parallel_on_dask(project, marks, node_count=1, run_invocation_timeout="1s", run_max_try=2)
    (project.root / "pipelines" / "par" / "entry.py").write_text(entry)
    detail = execute(project, "par")
    log = log_of(detail, "score")
    assert detail.run.status == "completed", log
    assert "run() took longer than 1s" in log
    assert len(rows_of(detail)) == 24
    assert len(list(marks.glob("init-*"))) == 2  # the new worker process ran init() again


def cluster_pids(cluster: Cluster) -> list[int]:
    from distributed import Client

    with Client(cluster.address, timeout=30) as client:
        return list(client.run(os.getpid).values())


# ---- python_script on a worker -------------------------------------------------------------

SCRIPT = """
import os, sys, time
from scheduler.runtime import Run
print("cwd", os.getcwd())
print("argv", sys.argv[1:])
Run.get_context().log("answer", 42)
if sys.argv[1] == "sleep":
    with open(sys.argv[2], "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(120)
sys.exit(int(sys.argv[1]) if sys.argv[1].isdigit() else 0)
"""


def script_on_dask(project: Project, arguments: list[str], **fields: object) -> None:
    step = {
        "type": "python_script",
        "compute": "cluster",
        "script": "job.py",
        "arguments": arguments,
        "allow_reuse": False,
        **fields,
    }
    project.pipeline("job", {"steps": {"job": step}}, {"job.py": SCRIPT, "data.txt": "x"})


def test_python_script_runs_on_a_worker_in_the_datastore(cluster: Cluster, tmp_path: Path):
    project = dask_project(tmp_path / "p", cluster)
    script_on_dask(project, ["0"])
    detail = execute(project, "job")
    step = steps_of(detail)["job"]
    log = log_of(detail, "job")
    assert step["status"] == "completed", log
    assert "running on Dask worker w" in log
    cwd = next(line.split(" ", 1)[1] for line in log.splitlines() if line.startswith("cwd "))
    assert cwd.startswith(str(project.datastore / ".pipesched" / "runs"))
    assert not Path(cwd, "job.py").is_symlink()  # a copy the workers can read
    assert step["metrics"]["answer"] == 42


def test_python_script_exit_code_comes_back_from_the_worker(cluster: Cluster, tmp_path: Path):
    project = dask_project(tmp_path / "p", cluster)
    script_on_dask(project, ["3"])
    detail = execute(project, "job")
    step = steps_of(detail)["job"]
    assert (step["status"], step["exit_code"]) == ("failed", 3)


def test_step_timeout_stops_the_remote_process(cluster: Cluster, tmp_path: Path):
    project = dask_project(tmp_path / "p", cluster)
    pid_file = project.datastore / "remote.pid"
    script_on_dask(project, ["sleep", str(pid_file)], timeout="3s")
    detail = execute(project, "job")
    step = steps_of(detail)["job"]
    assert (step["status"], step["status_reason"]) == ("failed", "timeout")
    pid = int(pid_file.read_text())
    wait_until(lambda: not is_alive(pid, None), timeout=10, message="remote process stopped")


def test_killed_step_process_stops_the_remote_process(cluster: Cluster, tmp_path: Path):
    """SIGKILL leaves the local side no time to cancel (a daemon restart does this): the
    scheduler drops the dead client's task, and the worker stops the process on its own."""
    project = dask_project(tmp_path / "p", cluster)
    workdir = project.datastore / "work"
    workdir.mkdir(parents=True)
    pid_file = project.datastore / "remote.pid"
    spec = {
        "argv": ["{worker_python}", "-c", SLEEPER, str(pid_file)],
        "workdir": str(workdir),
        "source_directory": str(tmp_path),
        "log": str(project.datastore / "remote.log"),
        "address": cluster.address,
        "datastores": {"default": str(project.datastore)},
        "environment": {},
        "key": "pipesched-killed-step",
    }
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    local = subprocess.Popen(
        [sys.executable, "-m", "scheduler.compute.dask_runner", str(spec_file)], env=env
    )
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=30)
        remote = int(pid_file.read_text())
        assert is_alive(remote, None)
    finally:
        local.kill()
        local.wait()
    wait_until(lambda: not is_alive(remote, None), timeout=15, message="remote process stopped")


SLEEPER = """
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(120)
"""


def test_datastore_workers_cannot_see_fails_clearly(cluster: Cluster, tmp_path: Path):
    if cluster.hidden is None:
        pytest.skip("no mount namespaces here (unshare): cannot hide a folder from the workers")
    project = dask_project(Path(cluster.hidden) / tmp_path.name, cluster)
    script_on_dask(project, ["0"])
    detail = execute(project, "job")
    step = steps_of(detail)["job"]
    log = log_of(detail, "job")
    assert step["status"] == "failed"
    assert "does not see datastore 'default'" in log
    assert "cwd" not in log  # the script never started


# ---- without Dask ---------------------------------------------------------------------------


def test_dask_target_without_dask_installed_is_a_validation_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from scheduler.core.errors import DefinitionErrors
    from scheduler.definitions.config import load_config

    project = make_project(tmp_path)
    config = yaml.safe_load(project.config_path.read_text())
    config["compute"]["cluster"] = {"type": "dask", "address": "tcp://127.0.0.1:8786"}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    with pytest.raises(DefinitionErrors) as caught:
        load_config(project.config_path)
    text = str(caught.value)
    assert f"{project.config_path}:" in text
    assert "compute target 'cluster' has type dask, but Dask is not installed" in text
    assert "pipesched[dask]" in text


def test_command_step_runs_on_a_worker(cluster: Cluster, tmp_path: Path):
    project = dask_project(tmp_path / "p", cluster)
    out = project.datastore / "from-command.txt"
    step = {
        "type": "command",
        "compute": "cluster",
        "command": [
            sys.executable,
            "-c",
            f"import os; open('{out}', 'w').write(str(os.getppid()))",
        ],
        "allow_reuse": False,
    }
    project.pipeline("cmd", {"steps": {"cmd": step}})
    detail = execute(project, "cmd")
    step_json = steps_of(detail)["cmd"]
    assert step_json["status"] == "completed", log_of(detail, "cmd")
    assert "running on Dask worker" in log_of(detail, "cmd")
    assert int(out.read_text()) in cluster_pids(cluster)  # started by a worker process
