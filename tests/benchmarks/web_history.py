"""A year of history for the web view's benchmark, as a busy daemon would leave it: four
pipelines of three steps, runs fired by schedules (one every 15 minutes, nightly, weekdays,
weekly), by dropped files, by hand and through the API; failed, canceled, retried and reused
steps; two metrics per run of ``train`` (the pipeline page's chart); registered models; fire
records with skipped and missed fires; the file-drop ledger of the ``score-drops`` schedule.

The newest runs are real (``pipesched run``: real logs, pipeline versions, a model registered
from a step, a published version); everything older is written in bulk through SQLAlchemy Core
in one transaction (10^5 runs through ``create_run`` would take many minutes and measure none
of the reads). ``seeded_project`` caches the built project under the temp dir, keyed by the
store's schema revision, ``SEED_VERSION`` and the size, and hands out a fresh copy of it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from scheduler.core.ids import new_run_id
from scheduler.store.migrate import HEAD_REVISION
from scheduler.store.models import (
    FireRow,
    MetricRow,
    ModelRow,
    PipelineVersion,
    RunRow,
    ScheduleRow,
    StepRunRow,
)
from tests.projects import Project, make_project

SEED_VERSION = 2  # bump when what is seeded changes: the cache is keyed by it
CHUNK = 20_000  # rows per INSERT statement list
YEAR = timedelta(days=365)

STEP_PIPELINE = """
    description: {description}
    parameters:
{parameters}
    steps:
      {first}: {{type: command, command: [echo, "{first} done"], allow_reuse: false}}
      {second}:
        type: command
        allow_reuse: false
        command: [python, -c, "for epoch in range(300): print('epoch', epoch, 'ok')"]
        depends_on: [{first}]
      {third}:
        type: python_script
        script: {third}.py
        allow_reuse: false
        depends_on: [{second}]
"""
EVALUATE = """
    import random
    from scheduler.runtime import Run

    run = Run.get_context()
    run.log("accuracy", round(random.uniform(0.7, 0.95), 4))
    run.log("loss", round(random.uniform(0.1, 0.6), 4))
    with open("model.txt", "w") as handle:
        handle.write("weights")
    run.register_model("churn-model", "model.txt", tags={"stage": "candidate"})
    print("evaluated")
"""
PLAIN_STEP = """
    print("done")
"""
#: name -> (steps, parameters as YAML lines, description)
PIPELINES: dict[str, tuple[tuple[str, str, str], str, str]] = {
    "train": (("load", "fit", "evaluate"), "rate: {type: float, default: 0.1}",
              "Train the churn model and evaluate it"),
    "prepare": (("extract", "clean", "publish"), "day: {type: str, default: today}",
                "Extract and clean the day's data"),
    "score": (("load", "predict", "write"), "input_path: {type: str, default: none}",
              "Score a batch of customers"),
    "report": (("query", "render", "send"), "week: {type: int, default: 0}",
               "The weekly report"),
}  # fmt: skip
METRIC_PIPELINE, METRIC_STEP, METRICS = "train", "evaluate", ("accuracy", "loss")
SCHEDULES = """
    schedules:
      - name: score-every-15m
        description: Scores what came in during the last quarter hour
        pipeline: score
        cron: "*/15 * * * *"
        catchup: none
      - name: nightly-train
        pipeline: train
        cron: "0 2 * * *"
        timezone: Europe/Berlin
        catchup: none
      - name: weekday-prepare
        pipeline: prepare
        cron: "30 6 * * MON-FRI"
        timezone: America/New_York
        catchup: none
      - name: weekly-report
        pipeline: report
        cron: "0 9 * * MON"
        catchup: none
      - name: score-drops
        pipeline: score
        concurrency: allow
        on_change: {datastore: default, path: inbox/, data_path_parameter: input_path}
"""
#: The cron schedules' fire times over the year (UTC, near enough for a history) and whether
#: the schedule was later disabled (``pipesched schedule disable``: its override, not its YAML).
FREQUENT = "score-every-15m"  # disabled: a live one would fire during the benchmark
DROPS = "score-drops"
RARE = "weekly-report"  # a run in 2,000: its runs are far apart in the history
MODELS = ("risk-model", "demand-forecast", "churn-baseline", "ltv-model", "fraud-score",
          "price-elasticity", "segmenter", "uplift-model")  # fmt: skip


@dataclass
class SeededHistory:
    """A project with its history, and the runs a benchmark asks for by id."""

    project: Project
    newest_real_run: str  # a finished run of ``train`` with real step logs
    old_run: str  # a run about 90% down the history: ``/runs?before=`` pages from it
    size: int


def seeded_project(root: Path, size: int) -> SeededHistory:
    """A copy, at ``root``, of the cached project of ``size`` bulk runs (built when missing)."""
    name = f"web-{HEAD_REVISION}-s{SEED_VERSION}-{size}"
    cache = Path(tempfile.gettempdir()) / "pipesched-bench" / name
    if not (cache / "seeded.json").exists():
        staging = cache.with_name(f"{cache.name}.{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        began = time.perf_counter()
        build(staging / "project", size)
        print(f"web_history: built {size} runs in {time.perf_counter() - began:.1f}s "
              f"(cached in {cache})", file=sys.stderr)  # fmt: skip
        shutil.rmtree(cache, ignore_errors=True)
        staging.rename(cache)
    return copy_seeded(cache, root)


def copy_seeded(built: Path, root: Path) -> SeededHistory:
    """A copy at ``root`` of the project built in ``built`` (its ``project`` folder)."""
    seeded = json.loads((built / "seeded.json").read_text())
    shutil.copytree(built / "project", root, symlinks=True)
    _moved(Path(seeded["built_in"]), root)
    return SeededHistory(
        Project(root), seeded["newest_real_run"], seeded["old_run"], seeded["size"]
    )


def _moved(old: Path, new: Path) -> None:
    """Point the absolute paths the store keeps (step logs and folders, models) at the copy."""
    database = new / "var" / "pipesched.db"
    with sqlite3.connect(database) as conn:
        for table, column in (("step_runs", "log_path"), ("step_runs", "workdir"),
                              ("models", "path")):  # fmt: skip
            conn.execute(
                f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                f"WHERE {column} LIKE ? || '%'",
                (str(new), len(str(old)) + 1, str(old)),
            )
    conn.close()


def build(root: Path, size: int) -> None:
    """Make the project at ``root``: real runs first (the newest), then ``size`` bulk runs
    before them; write ``seeded.json`` beside it last (its presence marks a finished build)."""
    project = make_project(root)
    for name, (steps, parameters, description) in PIPELINES.items():
        scripts = {f"{steps[2]}.py": EVALUATE if name == METRIC_PIPELINE else PLAIN_STEP}
        text = STEP_PIPELINE.format(
            description=description, parameters=f"      {parameters}", first=steps[0],
            second=steps[1], third=steps[2],
        )  # fmt: skip
        project.pipeline(name, text, scripts)
    project.schedules(SCHEDULES)
    (project.datastore / "inbox").mkdir(parents=True, exist_ok=True)
    real: list[str] = []
    for name in (*PIPELINES, METRIC_PIPELINE):
        done = project.cli("run", name, "--json", timeout=120)
        assert done.returncode == 0, done.stderr
        real.append(json.loads(done.stdout)["id"])
    published = project.cli("publish", METRIC_PIPELINE, "--version", "v1")
    assert published.returncode == 0, published.stderr
    with project.store() as store:
        oldest_real = store.get_run(real[0]).created_at
        ids = fill_history(store, size, end=oldest_real - timedelta(minutes=1))
    seeded = {
        "newest_real_run": real[-1],
        "old_run": ids[len(ids) // 10],
        "built_in": str(root),
        "size": size,
    }
    (root.parent / "seeded.json").write_text(json.dumps(seeded))


@dataclass
class _Planned:
    created: datetime
    pipeline: str
    trigger: str
    schedule: str | None = None
    nominal: datetime | None = None
    drop: tuple[str, int, int] | None = None  # path, size, mtime_ns of the dropped file


def _cron_times(end: datetime) -> list[tuple[datetime, str, str]]:
    """(fire time, schedule, pipeline) of the cron schedules over the year before ``end``."""
    start = (end - YEAR).replace(minute=0, second=0, microsecond=0)
    fires: list[tuple[datetime, str, str]] = []
    moment = start
    while moment < end:
        fires.append((moment, FREQUENT, "score"))
        if moment.minute == 0 and moment.hour == 1:
            fires.append((moment, "nightly-train", "train"))
        if moment.minute == 30 and moment.hour == 11 and moment.weekday() < 5:
            fires.append((moment, "weekday-prepare", "prepare"))
        if moment.minute == 0 and moment.hour == 9 and moment.weekday() == 0:
            fires.append((moment, "weekly-report", "report"))
        moment += timedelta(minutes=15)
    return fires


def _plan(size: int, end: datetime, rng: random.Random) -> list[_Planned]:
    """``size`` runs, oldest first: about 35% fired by schedules, 5% by dropped files, the
    rest by hand (three in four) or through the API."""
    fires = _cron_times(end)
    scheduled = min(len(fires), int(size * 0.35))
    fires = fires[len(fires) - scheduled :]  # the 15-minute schedule began mid-year at 10^5
    planned = [_Planned(when + timedelta(milliseconds=rng.randint(20, 400)), pipeline,
                        f"schedule:{name}", name, when)
               for when, name, pipeline in fires]  # fmt: skip
    span = (end - (end - YEAR)).total_seconds()
    drops = size // 20
    for k in range(drops):
        created = end - YEAR + timedelta(seconds=span * (k + rng.random()) / drops)
        path = f"inbox/customers-{k:06d}.csv"
        mtime_ns = int((created - timedelta(seconds=2)).timestamp() * 1e9)
        planned.append(_Planned(created, "score", f"file:{path}", DROPS,
                                drop=(path, rng.randint(2_000, 9_000_000), mtime_ns)))  # fmt: skip
    for _ in range(size - len(planned)):
        created = end - YEAR + timedelta(seconds=rng.uniform(0, span))
        trigger = "manual" if rng.random() < 0.75 else "api"
        planned.append(_Planned(created, rng.choice(tuple(PIPELINES)), trigger))
    planned.sort(key=lambda p: p.created)
    return planned


def fill_history(store: Any, size: int, *, end: datetime) -> list[str]:
    """``size`` finished runs in the year before ``end``, with their steps, metrics, fire
    records, ledger entries and some models, in one transaction; their ids, oldest first."""
    rng = random.Random(20261206)
    versions = _real_versions(store)
    runs: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    fires: list[dict[str, Any]] = []
    last_fire: dict[str, tuple[datetime, str]] = {}
    last_ok: dict[str, str] = {}  # pipeline -> its last completed run: reuse points at it
    ids: list[str] = []
    for plan in _plan(size, end, rng):
        run_id = new_run_id(plan.created)
        ids.append(run_id)
        roll = rng.random()
        status = "completed" if roll < 0.86 else "failed" if roll < 0.96 else "canceled"
        started = plan.created + timedelta(milliseconds=rng.randint(30, 300))
        finished, run_steps, reason = _steps(run_id, plan.pipeline, status, started,
                                             last_ok.get(plan.pipeline), rng)  # fmt: skip
        steps.extend(run_steps)
        version_id, content_hash = versions[plan.pipeline]
        runs.append({
            "id": run_id, "pipeline": plan.pipeline, "version": None,
            "pipeline_version_id": version_id, "content_hash": content_hash,
            "experiment": plan.pipeline, "status": status, "status_reason": reason,
            "recovered": False, "trigger": plan.trigger, "schedule": plan.schedule,
            "parameters": _parameters(plan, rng), "owner_host": None, "owner_pid": None,
            "owner_start_ticks": None, "created_at": plan.created, "started_at": started,
            "finished_at": finished,
        })  # fmt: skip
        if status == "completed":
            last_ok[plan.pipeline] = run_id
            if plan.pipeline == METRIC_PIPELINE:
                for name in METRICS:
                    metrics.append({
                        "run_id": run_id, "step": METRIC_STEP, "attempt": 1, "name": name,
                        "kind": "scalar", "value": round(rng.uniform(0.1, 0.95), 4),
                        "logged_at": finished - timedelta(seconds=1),
                    })  # fmt: skip
        if plan.nominal is not None:
            assert plan.schedule is not None
            fires.append(_fire(plan.schedule, plan.nominal, None, "started", None, run_id,
                               plan.created))  # fmt: skip
            last_fire[plan.schedule] = (plan.nominal, run_id)
            if plan.schedule == FREQUENT and rng.random() < 0.02:  # the fire after: refused
                later = plan.nominal + timedelta(minutes=7, seconds=30)
                fires.append(_fire(FREQUENT, later, None, "skipped",
                                   f"concurrency forbid: run {run_id} is still running",
                                   None, later))  # fmt: skip
        if plan.drop is not None:
            assert plan.schedule is not None
            fires.append(_fire(plan.schedule, None, plan.drop, "started", None, run_id,
                               plan.created))  # fmt: skip
            last_fire[plan.schedule] = (plan.created, run_id)
    fires.extend(_missed(fires, rng))
    models = _models(runs, rng)
    schedules = [{
        "name": name, "source": "file", "registered_at": end - YEAR, "override":
        False if name == FREQUENT else None, "definition": None, "last_fire_time": when,
        "last_outcome": "started", "last_run_id": run_id, "schedule_id": f"bench-{name}",
    } for name, (when, run_id) in last_fire.items()]  # fmt: skip
    with store.engine.begin() as conn:
        for table, rows in ((RunRow, runs), (StepRunRow, steps), (MetricRow, metrics),
                            (FireRow, fires), (ModelRow, models)):  # fmt: skip
            for first in range(0, len(rows), CHUNK):
                conn.execute(insert(table), rows[first : first + CHUNK])
        conn.execute(ScheduleRow.__table__.delete())
        conn.execute(insert(ScheduleRow), schedules)
    return ids


def _real_versions(store: Any) -> dict[str, tuple[int, str]]:
    """pipeline -> (pipeline_versions id, content hash) of its working copy, as recorded by
    the real runs."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                PipelineVersion.pipeline, PipelineVersion.id, PipelineVersion.content_hash
            ).where(PipelineVersion.version.is_(None))
        ).all()
    return {pipeline: (id_, content_hash) for pipeline, id_, content_hash in rows}


def _steps(
    run_id: str,
    pipeline: str,
    status: str,
    started: datetime,
    reusable: str | None,
    rng: random.Random,
) -> tuple[datetime, list[dict[str, Any]], str | None]:
    """The step attempts of one run, in order: a failed or canceled run stops at its second
    step and skips the third; some first steps are reused, some second steps retried."""
    names = PIPELINES[pipeline][0]
    rows: list[dict[str, Any]] = []
    moment = started
    reason = None

    def attempt(step: str, number: int, step_status: str, seconds: float, **extra: Any) -> None:
        nonlocal moment
        begin = moment + timedelta(milliseconds=rng.randint(2, 40))
        end = begin + timedelta(seconds=seconds)
        ran = step_status not in ("skipped", "reused")
        rows.append({
            "run_id": run_id, "step": step, "attempt": number, "display_name": step,
            "type": "python_script" if step == names[2] else "command", "status": step_status,
            "status_reason": extra.get("reason"), "exit_code": extra.get("exit_code"),
            "pid": None, "pgid": None, "proc_start_ticks": None,
            "started_at": begin if ran else None, "finished_at": end if ran else None,
            "log_path": None, "workdir": None, "fingerprint": f"{pipeline}-{step}-{number}",
            "reused_from": extra.get("reused_from"), "outputs": {},
        })  # fmt: skip
        if ran:
            moment = end

    if reusable is not None and rng.random() < 0.2:
        attempt(names[0], 1, "reused", 0, reused_from=reusable)
    else:
        attempt(names[0], 1, "completed", rng.uniform(1, 20), exit_code=0)
    if status == "completed":
        if rng.random() < 0.03:
            attempt(names[1], 1, "failed", rng.uniform(5, 60), exit_code=1, reason="exit code 1")
            attempt(names[1], 2, "completed", rng.uniform(30, 600), exit_code=0)
        else:
            attempt(names[1], 1, "completed", rng.uniform(30, 600), exit_code=0)
        attempt(names[2], 1, "completed", rng.uniform(2, 40), exit_code=0)
    elif status == "failed":
        attempt(names[1], 1, "failed", rng.uniform(5, 300), exit_code=1, reason="exit code 1")
        attempt(names[2], 1, "skipped", 0, reason=f"{names[1]} failed")
        reason = f"step {names[1]} failed"
    else:
        attempt(names[1], 1, "canceled", rng.uniform(5, 300), exit_code=-15, reason="canceled")
        attempt(names[2], 1, "skipped", 0, reason="run canceled")
        reason = "canceled by user"
    return moment + timedelta(milliseconds=rng.randint(5, 50)), rows, reason


def _parameters(plan: _Planned, rng: random.Random) -> dict[str, Any]:
    if plan.drop is not None:
        return {"input_path": plan.drop[0]}
    if plan.pipeline == "train":
        return {"rate": round(rng.choice((0.01, 0.03, 0.1, 0.3)), 2)}
    if plan.pipeline == "report":
        return {"week": plan.created.isocalendar().week}
    if plan.pipeline == "prepare":
        return {"day": plan.created.date().isoformat()}
    return {"input_path": "none"}


def _fire(
    schedule: str,
    nominal: datetime | None,
    drop: tuple[str, int, int] | None,
    outcome: str,
    reason: str | None,
    run_id: str | None,
    created: datetime,
) -> dict[str, Any]:
    path, size, mtime_ns = drop if drop is not None else (None, None, None)
    return {
        "schedule": schedule, "nominal_time": nominal, "path": path, "size": size,
        "mtime_ns": mtime_ns, "outcome": outcome, "reason": reason, "run_id": run_id,
        "created_at": created, "updated_at": created + timedelta(milliseconds=200),
    }  # fmt: skip


def _missed(fires: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """A few outages of the daemon: the frequent schedule's fires in them, missed under its
    ``catchup: none``."""
    taken = {f["nominal_time"] for f in fires if f["schedule"] == FREQUENT}
    if not taken:
        return []
    first, last = min(taken), max(taken)
    missed: list[dict[str, Any]] = []
    for _ in range(6):
        moment = first + (last - first) * rng.random()
        moment = moment.replace(minute=7, second=0, microsecond=0)
        for k in range(8):
            when = moment + timedelta(minutes=15 * k)
            if when not in taken:
                taken.add(when)
                missed.append(_fire(FREQUENT, when, None, "missed", "catch-up none: the "
                                    "daemon was down at the fire time", None, when))  # fmt: skip
    return missed


def _models(runs: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Eight models of a dozen versions or so each, registered by completed runs of train."""
    trained = [r for r in runs if r["pipeline"] == METRIC_PIPELINE and r["status"] == "completed"]
    rows: list[dict[str, Any]] = []
    for name in MODELS:
        count = rng.randint(3, 25)
        chosen = sorted(rng.sample(trained, count), key=lambda r: r["id"])
        for version, run in enumerate(chosen, start=1):
            rows.append({
                "name": name, "version": version, "path": f"models/{name}/{version}",
                "tags": {"stage": rng.choice(("candidate", "production", "archived"))},
                "properties": {"accuracy": round(rng.uniform(0.7, 0.95), 3)},
                "description": None, "run_id": run["id"], "step": METRIC_STEP,
                "created_at": run["finished_at"],
            })  # fmt: skip
    return rows
