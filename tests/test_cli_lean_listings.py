"""``pipesched schedules`` and ``pipesched pipelines`` without a daemon read a cached listing of
the validated definitions, and print exactly what the full path (pydantic and the ORM) prints:
the same tables, ``--json`` and ``-o wide``, the same errors and warnings, and never a stale
listing after a file, the store or a published version changed. The full path's output is the
same command with an empty cache folder. Real projects, real subprocesses, a real SQLite store."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.projects import Project, make_project

TRAIN = """
    description: trains the model
    parameters:
      accuracy: {type: float, default: 0.5}
    steps:
      train:
        type: python_script
        script: train.py
"""
SCORE = """
    steps:
      score:
        type: python_script
        script: score.py
"""
SCRIPT = "print('done')\n"
SCHEDULES = """
    schedules:
      - name: yearly
        pipeline: train
        cron: "0 3 1 1 *"
        timezone: Europe/Berlin
        description: once a year
      - name: weekly-interval
        pipeline: train
        interval: 7d
        start: 2020-01-06T00:00:00
        parameters: {accuracy: 0.7}
      - name: monthly
        pipeline: score
        recurrence: {frequency: Month, interval: 2, start_time: 2021-03-31T04:30:00}
        timezone: America/New_York
      - name: drops
        pipeline: score
        on_change: {path: inbox/, patterns: ["*.csv"]}
"""
READS = [
    ("schedules", "--json"),
    ("schedules",),
    ("schedules", "-o", "wide"),
    ("pipelines", "--json"),
    ("pipelines",),
    ("pipelines", "-o", "wide"),
]


class Listings:
    """A project and a cache folder that lives across its commands (as a user's does)."""

    def __init__(self, project: Project, cache: Path) -> None:
        self.project = project
        self.cache = cache

    def warm(self, *args: str) -> subprocess.CompletedProcess:
        return self.project.cli(*args, env={"XDG_CACHE_HOME": str(self.cache)})

    def full(self, *args: str, scratch: Path) -> subprocess.CompletedProcess:
        """The full path: a cache folder with nothing in it."""
        scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(os.path.join(scratch, f"cache-{len(os.listdir(scratch))}"))
        return self.project.cli(*args, env={"XDG_CACHE_HOME": str(folder)})

    def files(self) -> list[Path]:
        folder = self.cache / "pipesched" / "listings"
        return sorted(folder.iterdir()) if folder.is_dir() else []


def build(root: Path) -> Listings:
    project = make_project(root / "p")
    project.pipeline("train", TRAIN, {"train.py": SCRIPT})
    project.pipeline("score", SCORE, {"score.py": SCRIPT})
    project.schedules(SCHEDULES)
    done = project.cli("run", "score")
    assert done.returncode == 0, done.stderr
    return Listings(project, root / "cache")


@pytest.fixture
def listings(tmp_path: Path) -> Listings:
    return build(tmp_path)


# "in 75m": counted from when the command ran, so two reads a moment apart may differ by one.
RELATIVE_TIME = re.compile(r"\bin \d+(?:\.\d+)?(?:ms|[smhd])\b(?: \d+[smhd]\b)?")


def outcome(done: subprocess.CompletedProcess) -> tuple[int, str, str]:
    """What a read printed, its times from now masked (two reads straddle a minute at times)."""
    return done.returncode, RELATIVE_TIME.sub("in …", done.stdout), done.stderr


def assert_same_as_full(listings: Listings, scratch: Path, reads=READS) -> dict[tuple, str]:
    """Each read with the kept listing prints what the full path prints; their outputs."""
    shown = {}
    for args in reads:
        warm = listings.warm(*args)
        assert outcome(warm) == outcome(listings.full(*args, scratch=scratch)), args
        shown[args] = warm.stdout
    return shown


def test_a_warm_listing_prints_what_the_full_path_prints(listings: Listings, tmp_path) -> None:
    for args in READS:  # the first read of each kind keeps a listing, the next ones use it
        assert listings.warm(*args).returncode == 0
    assert len(listings.files()) == 2
    assert_same_as_full(listings, tmp_path / "scratch")
    shown = json.loads(listings.warm("schedules", "--json").stdout)
    assert {s["name"] for s in shown} == {"weekly-interval", "monthly", "yearly", "drops"}
    assert shown[-1]["name"] == "drops"  # never fires on time: last
    pipelines = json.loads(listings.warm("pipelines", "--json").stdout)
    assert [(p["name"], p["status"], p["steps"]) for p in pipelines] == [
        ("score", "ok", ["score"]),
        ("train", "ok", ["train"]),
    ]


def test_listings_are_private(listings: Listings) -> None:
    listings.warm("schedules")
    listings.warm("pipelines")
    folder = listings.cache / "pipesched" / "listings"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in listings.files()} == {0o600}


def loaded_modules(listings: Listings, *args: str) -> set[str]:
    """The modules a real ``pipesched ARGS`` had loaded when it ended (stdout a pipe)."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('\\n'.join(sys.modules), file=sys.stderr))\n"
        "from scheduler.cli import main\n"
        f"main({list(args)!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PIPESCHED_URL", "PIPESCHED_TOKEN")}
    env |= {
        "PIPESCHED_CONFIG": str(listings.project.config_path),
        "XDG_CACHE_HOME": str(listings.cache),
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=listings.project.root,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stderr.split())


HEAVY = ("sqlalchemy", "pydantic")


def test_a_warm_listing_loads_neither_pydantic_nor_sqlalchemy(listings: Listings) -> None:
    for args in [("schedules",), ("pipelines",)]:
        first = loaded_modules(listings, *args)
        assert {m for m in first if m.startswith(HEAVY)}, "the first read takes the full path"
        for again in [args, (*args, "--json"), (*args, "-o", "wide")]:
            heavy = {m for m in loaded_modules(listings, *again) if m.startswith(HEAVY)}
            assert heavy == set(), again


# -- what changes between two reads shows in the second ----------------------------------------


def edit_schedules(listings: Listings) -> None:
    path = listings.project.root / "config" / "schedules.yaml"
    path.write_text(path.read_text().replace('"0 3 1 1 *"', '"0 5 1 2 *"'))


def edit_pipeline(listings: Listings) -> None:
    listings.project.pipeline("train", TRAIN.replace("trains the model", "trains it better"))


def add_pipeline(listings: Listings) -> None:
    listings.project.pipeline("extra", SCORE, {"score.py": SCRIPT})


def rename_pipeline(listings: Listings) -> None:
    """Its folder keeps its name; its file declares another: the schedules of it are broken."""
    listings.project.pipeline("score", f"name: scoring\n{SCORE}")


def remove_script(listings: Listings) -> None:
    (listings.project.root / "pipelines" / "score" / "score.py").unlink()


def break_schedules(listings: Listings) -> None:
    listings.project.schedules("schedules: [\n")


def break_one_schedule(listings: Listings) -> None:
    path = listings.project.root / "config" / "schedules.yaml"
    path.write_text(path.read_text().replace('"0 3 1 1 *"', '"0 3 1 13 *"'))


def create_api_schedule(listings: Listings) -> None:
    # lazy: the services, only to keep an API schedule as the REST API would
    from scheduler.services.schedules import create_schedule

    project = listings.project
    definition = {"name": "from-api", "pipeline": "train", "cron": "0 6 1 * *"}
    with project.store() as store:
        create_schedule(project.config(), store, definition)


def publish_version(listings: Listings) -> None:
    done = listings.project.cli("publish", "train", "--version", "v1")
    assert done.returncode == 0, done.stderr


def disable_schedule(listings: Listings) -> None:
    done = listings.project.cli("schedule", "disable", "yearly")
    assert done.returncode == 0, done.stderr


def change_host(listings: Listings) -> None:
    path = listings.project.config_path
    config = yaml.safe_load(path.read_text())
    config["api"]["host"] = "127.0.0.2"
    path.write_text(yaml.safe_dump(config))


CHANGES: dict[str, Callable[[Listings], None]] = {
    "schedules.yaml edited": edit_schedules,
    "pipeline.yaml edited": edit_pipeline,
    "pipeline added": add_pipeline,
    "pipeline renamed in its file": rename_pipeline,
    "step script removed": remove_script,
    "schedules.yaml no longer parses": break_schedules,
    "one schedule broken": break_one_schedule,
    "API schedule created": create_api_schedule,
    "version published": publish_version,
    "schedule disabled": disable_schedule,
    "config's API host changed": change_host,
}


# Two kinds of change run in the default stage; every kind runs in the slow one (each is two
# cold reads of a full project, about ten seconds).
QUICK_CHANGES = ("schedules.yaml edited", "pipeline.yaml edited")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(name, marks=() if name in QUICK_CHANGES else pytest.mark.slow)
        for name in CHANGES
    ],
)
def test_a_change_between_two_reads_shows_in_the_second(
    change: str, listings: Listings, tmp_path: Path
) -> None:
    before = {}
    for args in READS:  # each keeps its listing
        done = listings.warm(*args)
        assert done.returncode == 0
        before[args] = done.stdout
    CHANGES[change](listings)
    assert assert_same_as_full(listings, tmp_path / "scratch") != before


def test_an_api_schedule_whose_pipeline_breaks_is_left_out_with_its_warning(
    listings: Listings, tmp_path: Path
) -> None:
    """An API schedule created, then its pipeline's script removed: the API schedule is no
    longer served, with a warning and its error, as the full path says."""
    create_api_schedule(listings)
    assert_same_as_full(listings, tmp_path / "s1", reads=[("schedules", "--json")])
    assert_same_as_full(listings, tmp_path / "s2", reads=[("schedules", "--json")])
    (listings.project.root / "pipelines" / "train" / "train.py").unlink()
    warm = listings.warm("schedules", "--json")
    assert outcome(warm) == outcome(listings.full("schedules", "--json", scratch=tmp_path / "s3"))
    assert "API schedule 'from-api'" in warm.stderr
    broken = [s for s in json.loads(warm.stdout) if s["name"] == "from-api"]
    assert [(s["source"], s["status"]) for s in broken] == [("api", "error")]


@pytest.mark.slow
def test_a_store_the_lean_reads_leave_alone_takes_the_full_path(
    listings: Listings, tmp_path: Path
) -> None:
    """A database URL with options is SQLAlchemy's to read: same output, the full path."""
    project = listings.project
    config = yaml.safe_load(project.config_path.read_text())
    config["database"] = f"{project.config().database_url}?timeout=5"
    project.config_path.write_text(yaml.safe_dump(config))
    for args in READS:
        listings.warm(*args)
    assert_same_as_full(listings, tmp_path / "scratch")
    heavy = {m for m in loaded_modules(listings, "schedules") if m.startswith(HEAVY)}
    assert "pydantic" in heavy and "sqlalchemy" in heavy


def test_the_lean_constants_are_the_full_paths() -> None:
    # lazy: the full definitions and API schedules, only to compare their constants
    from scheduler.definitions.listing_cache import PIPELINE_FILE
    from scheduler.definitions.pipeline import PIPELINE_FILE as FULL_PIPELINE_FILE
    from scheduler.services.api_schedules import KEPT_BESIDE_DEFINITION
    from scheduler.services.schedule_summary import KEPT_BESIDE_DEFINITION as LEAN_KEPT

    assert PIPELINE_FILE == FULL_PIPELINE_FILE
    assert LEAN_KEPT == KEPT_BESIDE_DEFINITION
