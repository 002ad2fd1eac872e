"""Thirty ``kill -9``s of a real daemon while a 1 s interval schedule (``catchup: all``) fires
and files keep landing in a watched inbox: afterwards every nominal time and every dropped file
was handled exactly once, nothing is left open, and the SQLite file is sound.

Some rounds arm a named crash point (``PIPESCHED_TEST_CRASHPOINT=name@N``), so the daemon dies
at the worst moments: a fire claimed but not yet a run, a step spawned but not yet recorded, a
write transaction flushed but not committed. The other rounds are killed from outside after a
random while. The step scripts append what they were given to a log, so the checks count real
executions, not only records.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from scheduler.core.pathnames import escape_name
from scheduler.daemon.recovery import REASON as DAEMON_RESTART
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

SEED = 20_240_917
ROUNDS = 30
INTERVAL = timedelta(seconds=1)
CRASH_ROUND_SHARE = 0.4
# Every crash point in the code, with the range of passes at which a round may arm it.
CRASHPOINTS = {
    "fire_claimed": (1, 4),
    "step_spawned": (1, 8),
    "in_write_transaction": (1, 80),
}
# Names a user's tools do produce: spaces, a leading dash, non-ASCII, bytes that are not UTF-8,
# a newline, shell quoting. (Dotfiles, *.part and *.tmp are ignored by default, so none here.)
ODD_NAMES = [
    b"plain",
    b"with space",
    b"-leading-dash",
    "é日本".encode(),
    b"\xff\xfe-not-utf8",
    b"new\nline",
    b'quote\'s "and" $dollar',
]
OPEN = ("queued", "running")

TICK = "tick"
INBOX = "inbox"

# Appends one line per real execution (O_APPEND: concurrent steps never interleave a line).
TICK_STEP = """
import os, sys
line = (os.environ["PIPESCHED_RUN_ID"] + "\\n").encode()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, line)
os.close(fd)
"""
DROP_STEP = """
import os, sys
name = os.path.basename(os.fsencode(sys.argv[2]))
line = (name.hex() + " " + os.environ["PIPESCHED_RUN_ID"] + "\\n").encode()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, line)
os.close(fd)
"""


@dataclass
class Dropper:
    """A thread that moves uniquely named files into the inbox at random short intervals,
    each written in a staging folder first and renamed in (atomic, as a careful producer does)."""

    staging: Path
    inbox: Path
    rng: random.Random
    dropped: list[bytes] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="dropper", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the dropper did not stop"

    def _run(self) -> None:
        staging, inbox = os.fsencode(self.staging), os.fsencode(self.inbox)
        while not self.stop_event.wait(self.rng.uniform(0.1, 0.6)):
            number = len(self.dropped)
            name = b"%04d-" % number + self.rng.choice(ODD_NAMES) + b".csv"
            with open(os.path.join(staging, name), "wb") as handle:
                handle.write(b"file %d\n" % number)
            os.rename(os.path.join(staging, name), os.path.join(inbox, name))
            self.dropped.append(name)


def storm_project(root: Path) -> tuple[Project, Path, Path]:
    """The project, the tick log and the drop log."""
    project = make_project(root, max_concurrent_runs=8, shutdown_grace="2s")
    ticks, drops = root / "ticks.log", root / "drops.log"
    project.pipeline(
        "tick",
        {
            "steps": {
                "s": {
                    "type": "python_script",
                    "script": "tick.py",
                    "arguments": [str(ticks)],
                    "allow_reuse": False,
                }
            }
        },
        {"tick.py": TICK_STEP},
    )
    project.pipeline(
        "drops",
        {
            "parameters": {"input_path": {"type": "path"}},
            "steps": {
                "s": {
                    "type": "python_script",
                    "script": "drop.py",
                    "arguments": [str(drops), "${{parameters.input_path}}"],
                    "allow_reuse": False,
                }
            },
        },
        {"drop.py": DROP_STEP},
    )
    project.schedules(f"""
        schedules:
          - name: {TICK}
            pipeline: tick
            interval: 1s
            catchup: all
            catchup_limit: 100000
            concurrency: allow
          - name: {INBOX}
            pipeline: drops
            concurrency: allow
            on_change:
              datastore: default
              path: inbox/
              data_path_parameter: input_path
              settle: 0.2s
    """)
    (project.datastore / "inbox").mkdir(parents=True)
    (project.datastore / "staging").mkdir()
    return project, ticks, drops


def ledger_path(name: bytes) -> str:
    """How the ledger (and ``fires``) names a file dropped into the inbox."""
    return "inbox/" + escape_name(os.fsdecode(name))


def start_round(daemon: DaemonProcess) -> bool:
    """Start the daemon; True once it is READY, False when it died first (a crash point armed
    for start-up: recovery, catch-up and the first scan write too)."""
    daemon.start(wait_ready=False)
    assert daemon.proc is not None
    proc = daemon.proc

    def ready_or_dead() -> str | None:
        if any("READY=1" in m for m in daemon.poll_messages()):
            return "ready"
        return "dead" if proc.poll() is not None else None

    return wait_until(ready_or_dead, timeout=60, message="daemon neither READY nor dead") == "ready"


def end_round(daemon: DaemonProcess, window: float) -> str:
    """Let the daemon run ``window`` seconds (or until its crash point kills it), then kill -9
    it. Returns how it died; any death but SIGKILL is a defect."""
    assert daemon.proc is not None
    try:
        daemon.proc.wait(timeout=window)
        how = "crash point"
    except subprocess.TimeoutExpired:
        daemon.kill9()
        how = "kill -9"
    code = daemon.proc.returncode
    assert code == -signal.SIGKILL, f"daemon exited {code} on its own:\n{daemon.log()}"
    return how


def cli_json(project: Project, *args: str) -> list[dict]:
    done = project.cli(*args, "--json", "--limit", "0")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def reconciled(project: Project, dropped: list[bytes], since: datetime) -> bool:
    """Every file dropped has a started ledger row, every tick due before ``since`` has a run,
    no claim is left without a run and no run is open."""
    with project.store() as store:
        if store.open_runs():
            return False
        files = {f.path: f for f in store.list_file_fires(INBOX)}
        if any(
            ledger_path(n) not in files or files[ledger_path(n)].run_id is None for n in dropped
        ):
            return False
        ticks = store.list_fires(TICK, limit=0)
    if any(f.outcome == "claimed" for f in ticks):
        return False
    last = max((f.nominal_time for f in ticks if f.nominal_time is not None), default=None)
    return last is not None and last >= since


def storm(project: Project, daemons, rng: random.Random) -> tuple[Counter[str], list[str]]:
    """ROUNDS starts, each ended by its armed crash point or a kill -9 after a random while.
    Returns how the rounds ended and the crash points armed."""
    deaths: Counter[str] = Counter()
    crash_rounds: list[str] = []
    for _ in range(ROUNDS):
        env = {}
        window = rng.uniform(0.3, 2.5)  # drawn first: the rounds' plan never depends on timing
        if rng.random() < CRASH_ROUND_SHARE:
            point = rng.choice(sorted(CRASHPOINTS))
            low, high = CRASHPOINTS[point]
            armed = f"{point}@{rng.randint(low, high)}"
            env["PIPESCHED_TEST_CRASHPOINT"] = armed
            crash_rounds.append(armed)
        daemon = daemons(project, env=env)
        if not start_round(daemon):
            deaths["crash point before READY"] += 1
            assert daemon.proc is not None
            assert daemon.proc.returncode == -signal.SIGKILL, daemon.log()
            continue
        deaths[end_round(daemon, window)] += 1
    return deaths, crash_rounds


def step_executions(tick_log: Path, drop_log: Path) -> tuple[Counter[str], Counter[bytes]]:
    """What the steps themselves logged: executions per run id (both pipelines), and per
    dropped file name."""
    by_run: Counter[str] = Counter()
    by_file: Counter[bytes] = Counter()
    if tick_log.exists():
        by_run.update(tick_log.read_text().split())
    if drop_log.exists():
        for line in drop_log.read_text().splitlines():
            name_hex, run_id = line.split()
            by_file[bytes.fromhex(name_hex)] += 1
            by_run[run_id] += 1
    return by_run, by_file


def never_fired(times: list[datetime]) -> list[datetime]:
    """The interval's nominal times between the first and the last of ``times`` missing from it."""
    missing = []
    for earlier, later in pairwise(times):
        moment = earlier + INTERVAL
        while moment < later:
            missing.append(moment)
            moment += INTERVAL
    return missing


def test_the_storm_arms_every_crash_point_in_the_code() -> None:
    """A crash point added to the code joins the storm, or this fails."""
    package = Path(__file__).resolve().parents[1] / "scheduler"
    in_code = {
        name
        for source in package.rglob("*.py")
        for name in re.findall(r"\bcrashpoint\(\"(\w+)\"\)", source.read_text())
    }
    assert set(CRASHPOINTS) == in_code


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_thirty_kills_lose_and_double_nothing(tmp_path: Path, daemons) -> None:
    project, tick_log, drop_log = storm_project(tmp_path / "p")
    dropper = Dropper(
        project.datastore / "staging", project.datastore / "inbox", random.Random(SEED + 1)
    )
    storm_started = time.monotonic()
    dropper.start()
    try:
        deaths, crash_rounds = storm(project, daemons, random.Random(SEED))
    finally:
        dropper.stop()
    storm_seconds = time.monotonic() - storm_started

    # The last start: no crash point. It must reconcile everything the storm left.
    restart = time.monotonic()
    since = datetime.now().astimezone()
    daemon = daemons(project).start()
    wait_until(
        lambda: reconciled(project, dropper.dropped, since),
        timeout=120,
        interval=0.2,
        message="the last start did not reconcile what the storm left",
    )
    reconcile_seconds = time.monotonic() - restart
    # Stop the interval before the clean stop, so no fire lands in the middle of shutting down.
    disabled = project.cli("schedule", "disable", TICK)
    assert disabled.returncode == 0, disabled.stderr
    wait_until(
        lambda: reconciled(project, dropper.dropped, since),
        timeout=60,
        interval=0.2,
        message="the runs still in flight when the interval was disabled did not end",
    )
    assert daemon.stop() == 0, daemon.log()

    # ---- read back as a user would --------------------------------------------------------
    fires = cli_json(project, "fires")
    runs = {r["id"]: r for r in cli_json(project, "runs")}
    tick_fires = [f for f in fires if f["schedule"] == TICK]
    file_fires = [f for f in fires if f["schedule"] == INBOX]

    # Nominal times: one record each, each with its own run, and no gap between first and last.
    nominal = Counter(f["nominal_time"] for f in tick_fires)
    doubled_times = sorted(t for t, n in nominal.items() if n > 1)
    times = sorted(datetime.fromisoformat(t) for t in nominal)
    lost_times = never_fired(times)
    tick_outcomes = Counter(f["outcome"] for f in tick_fires)
    tick_run_ids = [f["run_id"] for f in tick_fires if f["run_id"] is not None]
    tick_runs = [r for r in runs.values() if r["schedule"] == TICK]

    # Files: one ledger row each, each with its own run.
    by_path = Counter(f["path"] for f in file_fires)
    dropped_paths = {ledger_path(n): n for n in dropper.dropped}
    doubled_files = sorted(p for p, n in by_path.items() if n > 1)
    lost_files = sorted(p for p in dropped_paths if p not in by_path)
    unexpected_files = sorted(p for p in by_path if p not in dropped_paths)
    file_run_ids = [f["run_id"] for f in file_fires if f["run_id"] is not None]
    file_runs = [r for r in runs.values() if r["schedule"] == INBOX]

    # Real executions, from the steps' own logs.
    executed, executed_files = step_executions(tick_log, drop_log)
    runs_executed_twice = sorted(r for r, n in executed.items() if n > 1)
    files_executed_twice = sorted(n for n, c in executed_files.items() if c > 1)

    statuses = Counter((r["status"], r["status_reason"]) for r in runs.values())
    open_runs = [r["id"] for r in runs.values() if r["status"] in OPEN]
    completed = {r["id"] for r in runs.values() if r["status"] == "completed"}
    # A completed run's step really ran, exactly once.
    completed_unexecuted = sorted(r for r in completed if executed[r] != 1)
    executed_in_no_run = sorted(r for r in executed if r not in runs)

    with sqlite3.connect(project.state_dir / "pipesched.db") as db:
        integrity = db.execute("PRAGMA integrity_check").fetchall()

    print(
        f"\nkill storm (seed {SEED}):"
        f"\n  rounds {ROUNDS}: {dict(deaths)} in {storm_seconds:.0f} s; crash points armed "
        f"{len(crash_rounds)}: {', '.join(crash_rounds)}"
        f"\n  nominal times {len(nominal)} ({times[0].time()} .. {times[-1].time()}), "
        f"outcomes {dict(tick_outcomes)}, runs {len(tick_runs)}, "
        f"executions {sum(executed[r['id']] for r in tick_runs)}"
        f"\n  files dropped {len(dropper.dropped)}, ledger rows {len(file_fires)}, "
        f"runs {len(file_runs)}, executions {sum(executed_files.values())}"
        f"\n  duplicates: nominal times {len(doubled_times)}, files {len(doubled_files)}, "
        f"runs executed twice {len(runs_executed_twice)}, "
        f"files executed twice {len(files_executed_twice)}"
        f"\n  losses: nominal times {len(lost_times)}, files {len(lost_files)}"
        f"\n  open runs {len(open_runs)}; run statuses {dict(statuses)}"
        f"\n  last restart to all reconciled: {reconcile_seconds:.1f} s"
        f"\n  integrity_check {integrity}"
    )

    assert not doubled_times and not doubled_files, (doubled_times, doubled_files)
    assert not runs_executed_twice, runs_executed_twice
    assert not files_executed_twice, files_executed_twice
    assert not lost_times, [t.isoformat() for t in lost_times]
    assert not lost_files and not unexpected_files, (lost_files, unexpected_files)
    # With catchup all and a limit above any gap, every nominal time ran: none missed or skipped.
    assert set(tick_outcomes) <= {"started", "queued"}, tick_outcomes
    assert len(set(tick_run_ids)) == len(tick_fires) == len(tick_runs)
    assert {f["outcome"] for f in file_fires} <= {"started", "queued"}
    assert len(set(file_run_ids)) == len(file_fires) == len(file_runs) == len(dropper.dropped)
    assert set(tick_run_ids) | set(file_run_ids) == set(runs)
    assert not open_runs, open_runs
    # A run ends completed, or failed because the daemon that ran it was killed.
    assert set(statuses) <= {("completed", None), ("failed", DAEMON_RESTART)}, statuses
    assert not completed_unexecuted, completed_unexecuted
    assert not executed_in_no_run, executed_in_no_run
    assert integrity == [("ok",)]
