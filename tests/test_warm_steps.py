"""Warm steps: a step forked from its target's zygote behaves as a spawned one, the zygote is
restarted when it dies or its modules change, and a step that cannot be forked is spawned."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scheduler.compute.warm import WarmPool, active_pool
from scheduler.core.errors import DefinitionErrors
from scheduler.definitions.config import load_config
from scheduler.dispatch.submit import submit_run
from scheduler.executor import RunExecutor, warmpool
from tests.conftest import wait_until
from tests.projects import Project, make_project

WARM = {"type": "local", "max_workers": 2, "warm_imports": ["json"]}

INTROSPECT = """
import json, os, signal, sys
print(json.dumps({
    "name": __name__,
    "argv": sys.argv,
    "cwd": os.getcwd(),
    "path0": sys.path[0],
    "stdin": sys.stdin.read(),
    "parent": os.getppid(),
    "leader": os.getpgid(0) == os.getpid() == os.getsid(0),
    "sigint": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
    "sigterm": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
    "sigpipe": signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN,
    "blocked": sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])),
    "run": os.environ["PIPESCHED_RUN_ID"],
    "own": os.environ.get("OWN"),
    "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
}))
"""


@pytest.fixture(autouse=True)
def _one_step_is_enough(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(warmpool, "MIN_FOREGROUND_STEPS", 1)
    yield
    warmpool.stop_warm_pool()


def execute(project: Project, name: str):
    config, store = project.config(), project.store()
    pipeline = project.load(name)
    run = submit_run(config, store, pipeline, {})
    asyncio.run(RunExecutor(config=config, store=store, pipeline=pipeline, run=run).execute())
    return store.get_run_detail(run.id)


def by_step(detail) -> dict:
    return {s["name"]: s for s in detail.to_json()["steps"]}


def log_of(detail, step: str) -> str:
    (attempt,) = [a for a in detail.attempts if a.step == step][-1:]
    return Path(attempt.log_path).read_text()


def counts() -> dict:
    pool = active_pool()
    assert pool is not None
    (row,) = [r for r in pool.describe() if r["target"] == "local"]
    return row


def introspect_project(root: Path, compute: dict) -> Project:
    project = make_project(root, compute={"local": compute})
    project.pipeline(
        "look",
        "steps:\n  look: {type: python_script, script: look.py, arguments: [a b, --c], "
        "allow_reuse: false, environment: {variables: {OWN: mine}}}\n",
        {"look.py": INTROSPECT},
    )
    return project


def test_a_forked_step_sees_what_a_spawned_step_sees(tmp_path: Path):
    seen = {}
    for mode, compute in (("spawned", {"type": "local"}), ("forked", WARM)):
        project = introspect_project(tmp_path / mode, compute)
        detail = execute(project, "look")
        assert by_step(detail)["look"]["status"] == "completed", log_of(detail, "look")
        seen[mode] = json.loads(log_of(detail, "look"))
        warmpool.stop_warm_pool()
    spawned, forked = seen["spawned"], seen["forked"]
    for view in (spawned, forked):
        assert view["parent"] == os.getpid()  # this process started it, or adopted it
        assert view["leader"] and view["sigint"] and view["sigterm"] and view["sigpipe"]
        assert view["name"] == "__main__" and view["stdin"] == "" and view["blocked"] == []
        assert view["argv"][1:] == ["a b", "--c"] and view["own"] == "mine"
        assert view["unbuffered"] == "1"
    assert Path(forked["argv"][0]).name == "look.py"
    assert Path(forked["path0"]) == Path(forked["argv"][0]).parent
    assert Path(forked["cwd"]).name == Path(spawned["cwd"]).name == "1"  # the attempt's folder


def test_the_step_was_forked_and_its_environment_shows_in_proc(tmp_path: Path):
    project = make_project(tmp_path, compute={"local": WARM})
    project.pipeline(
        "env",
        "steps:\n  env: {type: python_script, script: env.py, allow_reuse: false}\n",
        {"env.py": "import os\nprint(open(f'/proc/{os.getpid()}/environ', 'rb').read()"
                   ".split(b'\\0')[0].decode())\n"},
    )  # fmt: skip
    detail = execute(project, "env")
    assert log_of(detail, "env").strip() == f"PIPESCHED_RUN_ID={detail.run.id}"
    assert counts()["forked"] == 1 and counts()["spawned"] == 0


def test_each_request_runs_its_step_exactly_once(tmp_path: Path):
    project = make_project(tmp_path, compute={"local": WARM})
    project.pipeline(
        "twice",
        "steps:\n"
        "  a: {type: python_script, script: once.py, allow_reuse: false}\n"
        "  b: {type: python_script, script: once.py, allow_reuse: false}\n",
        {"once.py": "import os\nprint(os.getpid())\n"},
    )
    for _ in range(8):
        detail = execute(project, "twice")
        for attempt in detail.attempts:
            assert Path(attempt.log_path).read_text() == f"{attempt.pid}\n"
    assert counts()["forked"] == 16


RANDOM = """
import random, numpy
print(random.random(), numpy.random.rand())
"""


def test_each_forked_step_draws_its_own_random_numbers(tmp_path: Path):
    project = make_project(tmp_path, compute={"local": {**WARM, "warm_imports": ["numpy"]}})
    project.pipeline(
        "dice",
        "steps:\n"
        "  a: {type: python_script, script: dice.py, allow_reuse: false}\n"
        "  b: {type: python_script, script: dice.py, allow_reuse: false}\n",
        {"dice.py": RANDOM},
    )
    detail = execute(project, "dice")
    a, b = log_of(detail, "a").split(), log_of(detail, "b").split()
    assert counts()["forked"] == 2
    assert a[0] != b[0] and a[1] != b[1]


ENDINGS = {
    "exits": ("import sys\nsys.exit(3)\n", "exit code 3"),
    "raises": ("def deep():\n    raise ValueError('no good')\ndeep()\n", "exit code 1"),
    "killed": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "killed by SIGKILL"),
    "says": ("import sys\nsys.exit('bad input')\n", "exit code 1"),
}


def test_exits_exceptions_and_signals_end_a_forked_step_as_a_spawned_one(tmp_path: Path):
    steps = "".join(
        f"  {name}: {{type: python_script, script: {name}.py, allow_reuse: false}}\n"
        for name in ENDINGS
    )
    forks = "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)\n"
    project = make_project(tmp_path, compute={"local": WARM})
    project.pipeline(
        "endings",
        "continue_on_step_failure: true\nsteps:\n"
        + steps
        + "  forks: {type: python_script, script: forks.py, allow_reuse: false}\n",
        {**{f"{name}.py": script for name, (script, _) in ENDINGS.items()}, "forks.py": forks},
    )
    detail = execute(project, "endings")
    steps_seen = by_step(detail)
    for name, (_, reason) in ENDINGS.items():
        assert steps_seen[name]["status"] == "failed"
        assert steps_seen[name]["status_reason"] == reason, name
    assert steps_seen["forks"]["status"] == "completed"
    trace = log_of(detail, "raises")
    assert trace.startswith("Traceback (most recent call last):\n  File ")
    assert "raises.py" in trace.splitlines()[1] and "zygote" not in trace and "runpy" not in trace
    assert trace.strip().endswith("ValueError: no good")
    assert log_of(detail, "says").strip() == "bad input"
    assert counts()["forked"] == len(ENDINGS) + 1


ENDING_WELL = """
import atexit, sys, threading, time
out = open(sys.argv[1], "w")
out.write("left open, ")
cycle = [out]
cycle.append(cycle)  # not freed before exit: only the exit's flush saves it
atexit.register(lambda: open(sys.argv[2], "w").write("atexit ran"))
def late():
    time.sleep(0.2)
    open(sys.argv[3], "w").write("thread finished")
threading.Thread(target=late).start()
"""


def test_a_forked_step_ends_as_the_interpreter_would_end_it(tmp_path: Path):
    files = [tmp_path / name for name in ("open.txt", "atexit.txt", "thread.txt")]
    project = make_project(tmp_path / "p", compute={"local": WARM})
    project.pipeline(
        "ending",
        "steps:\n  s: {type: python_script, script: s.py, allow_reuse: false, arguments: "
        + json.dumps([str(f) for f in files])
        + "}\n",
        {"s.py": ENDING_WELL},
    )
    detail = execute(project, "ending")
    assert by_step(detail)["s"]["status"] == "completed", log_of(detail, "s")
    assert [f.read_text() for f in files] == ["left open, ", "atexit ran", "thread finished"]
    assert counts()["forked"] == 1


def test_steps_that_cannot_be_forked_are_spawned(tmp_path: Path):
    other = Path(sys.executable).resolve()  # the same program by another path: another interpreter
    project = make_project(tmp_path, compute={"local": WARM})
    project.pipeline(
        "mixed",
        "steps:\n"
        "  forked: {type: python_script, script: ok.py, allow_reuse: false}\n"
        "  optout: {type: python_script, script: ok.py, allow_reuse: false, warm: false}\n"
        "  ownpath: {type: python_script, script: ok.py, allow_reuse: false,"
        f" environment: {{variables: {{PYTHONPATH: {tmp_path}}}}}}}\n"
        f"  command: {{type: command, command: ['{sys.executable}', -c, pass], allow_reuse: false}}\n"
        f"  other: {{type: python_script, script: ok.py, allow_reuse: false,"
        f" environment: {{python: '{other}'}}}}\n",
        {"ok.py": "print('ok')\n"},
    )
    detail = execute(project, "mixed")
    assert {s["status"] for s in by_step(detail).values()} == {"completed"}
    spawned = 4 if str(other) != sys.executable else 3
    assert (counts()["forked"], counts()["spawned"]) == (1, spawned)


def test_a_dead_zygote_is_restarted_and_no_step_waits_on_it(tmp_path: Path):
    project = make_project(tmp_path, compute={"local": WARM})
    project.pipeline(
        "one",
        "steps:\n  s: {type: python_script, script: ok.py, allow_reuse: false}\n",
        {"ok.py": "print('ok')\n"},
    )
    execute(project, "one")
    pool = active_pool()
    assert pool is not None
    first = pool.zygotes["local"].pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: pool.zygotes["local"].poll() == "broken", timeout=10)
    detail = execute(project, "one")  # right away: spawned, not waiting for a new zygote
    assert detail.run.status == "completed"
    assert counts()["spawned"] == 1

    def restarted() -> bool:
        pool.check()
        return pool.zygotes["local"].poll() == "ready"

    wait_until(restarted, timeout=20, message="the zygote was restarted")
    assert pool.zygotes["local"].pid != first
    assert execute(project, "one").run.status == "completed"
    assert counts()["forked"] == 2


def test_a_changed_module_file_retires_the_zygote(tmp_path: Path, monkeypatch):
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "mylib.py").write_text("VERSION = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(modules))
    monkeypatch.syspath_prepend(str(modules))  # the config check finds it as the daemon would
    project = make_project(tmp_path / "p", compute={"local": {**WARM, "warm_imports": ["mylib"]}})
    project.pipeline(
        "v",
        "steps:\n  v: {type: python_script, script: v.py, allow_reuse: false}\n",
        {"v.py": "import mylib\nprint(mylib.VERSION)\n"},
    )
    config = project.config()
    pool = warmpool.start_warm_pool(
        warmpool.warm_targets(config.compute), config.state_dir,
        wait_for_start=True, watch_files=True, for_daemon=True,
    )  # fmt: skip
    assert pool is not None
    wait_until(lambda: pool.zygotes["local"].poll() == "ready", timeout=20)
    pool.check()  # follows the folders of its modules
    assert log_of(execute(project, "v"), "v").strip() == "1"

    (modules / "mylib.py").write_text("VERSION = 2\n")
    wait_until(lambda: pool.zygotes["local"].poll() == "stale", timeout=10)
    assert log_of(execute(project, "v"), "v").strip() == "2"  # spawned meanwhile
    assert counts()["spawned"] == 1

    def fresh() -> bool:
        pool.check()
        return pool.zygotes["local"].poll() == "ready"

    wait_until(fresh, timeout=30, message="a new zygote imported the new file")
    assert log_of(execute(project, "v"), "v").strip() == "2"
    assert counts()["forked"] == 2


def test_auto_learns_what_forked_steps_import(tmp_path: Path):
    project = make_project(tmp_path, compute={"local": {**WARM, "warm_imports": "auto"}})
    project.pipeline(
        "uses",
        "steps:\n  s: {type: python_script, script: s.py, allow_reuse: false}\n",
        {"s.py": "import csv, mylocal\nprint('ok')\n", "mylocal.py": "X = 1\n"},
    )
    assert execute(project, "uses").run.status == "completed"
    pool = active_pool()
    assert pool is not None
    pool.check()  # reads what the step noted at its exit
    learned = json.loads((project.state_dir / "warm" / "local.imports.json").read_text())
    assert "csv" in learned and "mylocal" not in learned  # the step's own module is not kept
    assert "csv" not in pool.zygotes["local"].modules  # a foreground run keeps its zygote

    warmpool.stop_warm_pool()  # as the daemon runs it: relearns at once
    config = project.config()
    pool = warmpool.start_warm_pool(
        warmpool.warm_targets(config.compute), config.state_dir,
        wait_for_start=False, watch_files=False, for_daemon=True,
    )  # fmt: skip
    assert pool is not None and "csv" in pool.zygotes["local"].modules
    (project.state_dir / "warm" / "local.seen" / "1.json").write_text('["decimal"]')

    def relearned() -> bool:
        pool.check()
        zygote = pool.zygotes["local"]
        return zygote.poll() == "ready" and "decimal" in zygote.modules

    wait_until(relearned, timeout=30, message="the zygote restarted with what it learned")


def test_a_module_known_not_to_survive_fork_keeps_its_target_cold(tmp_path: Path):
    pool = WarmPool(
        {"gpu": ("torch",), "cpu": ("json",)},
        env=dict(os.environ),
        log_dir=tmp_path,
        wait_for_start=True,
        watch_files=False,
    )
    rows = {row["target"]: row for row in pool.describe()}
    assert rows["gpu"]["state"] == "cold" and "CUDA" in rows["gpu"]["error"]
    assert set(pool.zygotes) == {"cpu"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"type": "local", "warm_imports": ["no_such_module_x"]}, "cannot import"),
        ({"type": "local", "warm_imports": ["pandas-x"]}, "not a module name"),
        (
            {"type": "dask", "address": "tcp://127.0.0.1:1", "warm_imports": ["json"]},
            "local targets only",
        ),
    ],
)
def test_warm_imports_mistakes_are_named(tmp_path: Path, section: dict, message: str):
    project = make_project(tmp_path, compute={"local": {"type": "local"}, "other": section})
    with pytest.raises(DefinitionErrors) as caught:
        load_config(project.config_path)
    text = str(caught.value)
    assert message in text and "other" in text and "pipesched.yaml" in text


def test_the_daemon_forks_steps_and_reports_its_zygote_in_metrics(tmp_path: Path, daemons):
    project = make_project(tmp_path, compute={"local": WARM})
    project.pipeline(
        "ok",
        "steps:\n  s: {type: python_script, script: ok.py, allow_reuse: false}\n",
        {"ok.py": "print('ok')\n"},
    )
    project.schedules("schedules:\n  - {name: often, pipeline: ok, interval: 1s}\n")
    daemon = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    url = listening["url"]

    def metric(name: str, **labels: str) -> float | None:
        text = requests.get(f"{url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return sample.value
        return None

    wait_until(lambda: metric("pipesched_zygote_up", target="local") == 1.0, timeout=20)
    assert (metric("pipesched_zygote_resident_bytes", target="local") or 0) > 1_000_000
    wait_until(
        lambda: (metric("pipesched_warm_steps_total", target="local", how="forked") or 0) >= 2,
        timeout=20,
        message="scheduled steps were forked",
    )
    with project.store() as store:
        runs = store.list_runs(limit=0)
    assert runs and all(r.status in ("completed", "running", "queued") for r in runs)
