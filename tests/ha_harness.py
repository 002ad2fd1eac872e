"""Several real daemons on one project, sharing one PostgreSQL database and one datastore, as
several machines would: each with a config file, a state directory and an API port of its own,
optionally reaching PostgreSQL through a ``TcpProxy`` of its own (so a test can cut one daemon
off). A 1 s interval schedule and a file-drop schedule run throughout; their steps append what
they ran to logs, so the checks count real executions, not only records.

The checks read the store directly, with SQL, as an operator would: one fire record per nominal
time, no nominal time lost, one run per record, one run per dropped file, no run left open, and
fire records whose leader epochs never go back.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess, daemon_request
from tests.projects import Project, make_project
from tests.tcp_proxy import TcpProxy

TICK = "tick"  # the 1 s interval schedule
INBOX = "inbox"  # the file-drop schedule
INTERVAL = timedelta(seconds=1)
OPEN_STATUSES = ("queued", "running")
#: Log events that say what a daemon is, in the order they are logged. A daemon without standby
#: mode logs only ``daemon_ready``, once it leads.
ROLE_EVENTS = {
    "ha_standby": "standby",
    "ha_leader": "leader",
    "daemon_ready": "leader",
    "ha_fenced": "fenced",
    "ha_unfenced": "leader",
    "ha_lease_lost": "lost",
    "daemon_lock_lost": "lost",
    "daemon_stopping": "stopping",
}

TICK_STEP = """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, (os.environ["PIPESCHED_RUN_ID"] + "\\n").encode())
os.close(fd)
"""
DROP_STEP = """
import os, sys
line = os.path.basename(sys.argv[2]) + " " + os.environ["PIPESCHED_RUN_ID"] + "\\n"
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, line.encode())
os.close(fd)
"""

Spawn = Callable[..., DaemonProcess]
T = TypeVar("T")


@dataclass(eq=False)
class Member:
    """One daemon of the cluster: its own project folder (config and state dir), its proxy if
    it has one, and its processes (the last is the current one; a restart adds one)."""

    name: str
    project: Project
    proxy: TcpProxy | None
    processes: list[DaemonProcess] = field(default_factory=list)
    # Per log file: how far role() has read it, and the role it found there.
    _read_roles: dict[Path, tuple[int, str]] = field(default_factory=dict)

    @property
    def process(self) -> DaemonProcess:
        assert self.processes, f"{self.name} was never started"
        return self.processes[-1]

    @property
    def pid(self) -> int | None:
        proc = self.processes[-1].proc if self.processes else None
        return proc.pid if proc is not None else None

    def alive(self) -> bool:
        return (
            bool(self.processes)
            and self.process.proc is not None
            and (self.process.proc.poll() is None)
        )

    def role(self) -> str:
        """``leader``, ``standby``, ``fenced``, ``lost``, ``stopping``, ``starting`` (no role
        logged yet) or ``exited``, from the current process's own log."""
        if not self.processes:
            return "never started"
        if not self.alive():
            return "exited"
        process = self.process
        read, role = self._read_roles.get(process.log_path, (0, "starting"))
        # Only what was logged since the last look: the log grows for as long as a test runs.
        with open(process.log_path, "rb") as log:
            log.seek(read)
            chunk = log.read()
        complete = chunk.rfind(b"\n") + 1
        for line in chunk[:complete].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                role = ROLE_EVENTS.get(record.get("event", ""), role)
        self._read_roles[process.log_path] = (read + complete, role)
        return role

    def events(self, name: str) -> list[dict[str, Any]]:
        """``name`` events of every process this member ran, oldest first."""
        return [e for p in self.processes for e in p.events(name)]

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A request to this daemon's own API, over its unix socket."""
        return daemon_request(self.project, method, path, body)

    def logs(self, tail: int = 60) -> str:
        """The last ``tail`` log lines of each of its processes, for a failure's message."""
        return "\n".join(
            f"--- {self.name} pid {p.proc.pid if p.proc else '-'} (last {tail} lines)\n"
            + "\n".join(p.log().splitlines()[-tail:])
            for p in self.processes
        )


@dataclass
class Leadership:
    """The store's ``leadership`` row."""

    epoch: int
    holder: str | None
    pid: int | None
    api_url: str | None
    lease_until: datetime | None


class FileDropper:
    """A thread that moves numbered files into the shared inbox every 0.1-0.5 s, each written
    in a staging folder first and renamed in (as a careful producer does)."""

    def __init__(self, datastore: Path, seed: int = 20_261_206) -> None:
        self.staging = datastore / "staging"
        self.inbox = datastore / "inbox"
        self.staging.mkdir(parents=True, exist_ok=True)
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(seed)
        self.dropped: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dropper", daemon=True)

    def start(self) -> FileDropper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the dropper did not stop"

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(0.1, 0.5)):
            name = f"{len(self.dropped):05d}.csv"
            (self.staging / name).write_text(f"file {name}\n")
            os.rename(self.staging / name, self.inbox / name)
            self.dropped.append(name)


class HaCluster:
    """``size`` daemons on one project. ``spawn`` makes a DaemonProcess (the ``daemons``
    fixture, so that every one is killed when the test ends). ``standby`` False writes no
    ``ha`` section: the daemons run as a single daemon does. ``proxied``: each daemon reaches
    PostgreSQL through a TcpProxy of its own."""

    def __init__(
        self,
        root: Path,
        database_url: str,
        spawn: Spawn = DaemonProcess,
        *,
        size: int = 3,
        lease: float = 3.0,
        heartbeat: float = 0.5,
        standby: bool = True,
        proxied: bool = False,
        shutdown_grace: str = "2s",
    ) -> None:
        self.root = root
        self.database_url = database_url
        self.spawn = spawn
        self.lease = lease
        self.heartbeat = heartbeat
        self.shared = make_project(
            root / "shared",
            database_url=database_url,
            max_concurrent_runs=8,
            shutdown_grace=shutdown_grace,
        )
        self.tick_log = root / "ticks.log"
        self.drop_log = root / "drops.log"
        self._write_pipelines_and_schedules()
        self.members = [
            self._member(f"d{i}", standby=standby, proxied=proxied, grace=shutdown_grace)
            for i in range(size)
        ]
        self.engine: Engine = create_engine(database_url, poolclass=NullPool)

    # -- set-up ----------------------------------------------------------------------------

    @property
    def datastore(self) -> Path:
        return self.shared.datastore

    def _write_pipelines_and_schedules(self) -> None:
        self.shared.pipeline(
            "tick",
            {
                "steps": {
                    "s": {
                        "type": "python_script",
                        "script": "tick.py",
                        "arguments": [str(self.tick_log)],
                        "allow_reuse": False,
                    }
                }
            },
            {"tick.py": TICK_STEP},
        )
        self.shared.pipeline(
            "drops",
            {
                "parameters": {"input_path": {"type": "path"}},
                "steps": {
                    "s": {
                        "type": "python_script",
                        "script": "drop.py",
                        "arguments": [str(self.drop_log), "${{parameters.input_path}}"],
                        "allow_reuse": False,
                    }
                },
            },
            {"drop.py": DROP_STEP},
        )
        # catchup all: a nominal time that falls due while no daemon leads runs once one does.
        self.shared.schedules(f"""
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
        (self.datastore / "inbox").mkdir(parents=True, exist_ok=True)

    def _member(self, name: str, *, standby: bool, proxied: bool, grace: str) -> Member:
        """A config of its own: the shared database (through its proxy), pipelines, schedules
        and datastore; its own state dir (``<root>/<name>/var``)."""
        shared = self.shared.config()
        proxy = TcpProxy.for_url(self.database_url) if proxied else None
        root = self.root / name
        (root / "config").mkdir(parents=True)
        config: dict[str, Any] = {
            "state_dir": "../var",
            "database": proxy.url(self.database_url) if proxy else self.database_url,
            "pipelines_dir": str(shared.pipelines_dir),
            "schedules": str(shared.schedules_file),
            "datastores": {"default": {"path": str(shared.default_datastore.path)}},
            "compute": {"local": {"type": "local", "max_workers": 4}},
            "api": {"host": "127.0.0.1", "port": 0},
            "max_concurrent_runs": 8,
            "shutdown_grace": grace,
        }
        if standby:
            config["ha"] = {
                "mode": "standby",
                "lease": f"{self.lease:g}s",
                "heartbeat": f"{self.heartbeat:g}s",
            }
        (root / "config" / "pipesched.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        return Member(name, Project(root), proxy)

    # -- life ------------------------------------------------------------------------------

    def start(self, member: Member, *, wait: bool = True, timeout: float = 60) -> Member:
        """Start ``member``'s daemon (again); with ``wait``, until it sent READY=1 (a leader
        and a standby both do)."""
        process = self.spawn(member.project)
        member.processes.append(process)
        process.start(wait_ready=wait, timeout=timeout)
        return member

    def start_all(self, timeout: float = 60) -> Member:
        """The first member starts and leads; the others join as standbys. Returns the leader."""
        first, *others = self.members
        self.start(first, timeout=timeout)
        self.wait_role(first, "leader", timeout=timeout)
        for member in others:
            self.start(member, timeout=timeout)
            self.wait_role(member, "standby", timeout=timeout)
        return first

    def stop_all(self, timeout: float = 60) -> dict[str, int]:
        """SIGTERM the standbys first (no takeover), then whoever leads; their exit codes."""
        alive = [m for m in self.members if m.alive()]
        order = sorted(alive, key=lambda m: m.role() == "leader")
        return {m.name: m.process.stop(timeout=timeout) for m in order}

    def close(self) -> None:
        """Kill what still runs, close the proxies and the engine."""
        for member in self.members:
            for process in member.processes:
                process.close()
            if member.proxy is not None:
                member.proxy.close()
        self.engine.dispose()

    def __enter__(self) -> HaCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- who leads -------------------------------------------------------------------------

    def wait(self, condition: Callable[[], T], what: str, timeout: float = 30) -> T:
        """``wait_until``, failing with ``what`` and the members' logs as they are then."""
        try:
            return wait_until(condition, timeout=timeout, interval=0.05, message=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def logs(self) -> str:
        return "\n".join(m.logs() for m in self.members)

    def wait_role(self, member: Member, role: str, timeout: float = 30) -> Member:
        self.wait(lambda: member.role() == role, f"{member.name} to be {role}", timeout)
        return member

    def leaders(self) -> list[Member]:
        """The members that say, in their log, that they lead now."""
        return [m for m in self.members if m.role() == "leader"]

    def leader(self) -> Member:
        """The one member that leads; fails naming every member's role when not exactly one
        does (a daemon that still believes it leads after another took over is a fault)."""
        leaders = self.leaders()
        roles = {m.name: m.role() for m in self.members}
        assert len(leaders) == 1, f"not exactly one leader: {roles}\n{self.logs()}"
        return leaders[0]

    def wait_new_leader(self, previous: Member, timeout: float = 30) -> Member:
        """Another member leads (by its log), and the store's leadership names its process."""

        def found() -> Member | None:
            candidates = [m for m in self.leaders() if m is not previous]
            if len(candidates) != 1:
                return None
            row = self.leadership()
            if row is not None and row.pid != candidates[0].pid:
                return None
            return candidates[0]

        leader = self.wait(found, f"a member other than {previous.name} to lead", timeout)
        assert leader is not None
        return leader

    # -- the store, read directly ----------------------------------------------------------

    def has_column(self, table: str, column: str) -> bool:
        with self.engine.connect() as conn:
            columns = inspect(conn).get_columns(table) if inspect(conn).has_table(table) else []
        return any(c["name"] == column for c in columns)

    def leadership(self) -> Leadership | None:
        """The ``leadership`` row, or None where the store has none (yet)."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("leadership"):
                return None
            row = conn.execute(
                text("SELECT epoch, holder, pid, api_url, lease_until FROM leadership WHERE id = 1")
            ).first()
        if row is None:
            return None
        return Leadership(int(row[0]), row[1], row[2], row[3], row[4])

    def fires(self, schedule: str) -> list[dict[str, Any]]:
        """The schedule's fire records in id order (``epoch`` None where there is no column)."""
        epoch = "epoch" if self.has_column("fires", "epoch") else "NULL AS epoch"
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT id, nominal_time, path, outcome, reason, run_id, created_at, "
                    f"{epoch} FROM fires WHERE schedule = :s ORDER BY id"
                ),
                {"s": schedule},
            ).mappings()
            return [dict(r) for r in rows]

    def runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, schedule, trigger, status, status_reason, owner_host, owner_pid, "
                    "created_at, finished_at FROM runs ORDER BY created_at"
                )
            ).mappings()
            return [dict(r) for r in rows]

    def first_fire_after(self, moment: datetime, epoch: int | None = None) -> datetime | None:
        """When the first tick fire record written after ``moment`` (of ``epoch``, if given)
        was created."""
        created = [
            f["created_at"]
            for f in self.fires(TICK)
            if f["created_at"] > moment and (epoch is None or f["epoch"] == epoch)
        ]
        return min(created, default=None)

    def wait_fires_of(
        self, epoch: int | None, after: datetime, count: int = 1, timeout: float = 30
    ) -> bool:
        """Wait until ``count`` tick fires were written after ``after`` (of ``epoch``)."""

        def written() -> bool:
            fires = self.fires(TICK)
            mine = [f for f in fires if epoch is None or f["epoch"] == epoch]
            return len([f for f in mine if f["created_at"] > after]) >= count

        what = f"{count} tick fires of epoch {epoch} after {after.isoformat()}"
        return self.wait(written, what, timeout)

    def settled(self, dropped: list[str]) -> bool:
        """Every dropped file has a run, no tick fire is only claimed, and no run is open."""
        files = {f["path"]: f for f in self.fires(INBOX)}
        if any(files.get(f"inbox/{n}", {}).get("run_id") is None for n in dropped):
            return False
        if any(f["outcome"] == "claimed" for f in self.fires(TICK)):
            return False
        return not any(r["status"] in OPEN_STATUSES for r in self.runs())

    def quiesce(
        self, dropper: FileDropper, timeout: float = 90, *, strict: bool = True
    ) -> dict[str, int]:
        """Stop dropping and ticking (the tick schedule disabled through the leader), wait until
        everything dropped or fired was handled, then stop every daemon; their exit codes.
        Not ``strict``: what is still unhandled after ``timeout`` is left to the checks."""
        dropper.stop()
        leader = self.leader()
        status, body = leader.request("POST", f"/api/v1/schedules/{TICK}/disable")
        assert status == 200, (status, body)
        try:
            self.wait(
                lambda: self.settled(dropper.dropped),
                "the leader to handle everything dropped and fired",
                timeout,
            )
        except AssertionError:
            if strict:
                raise
        return self.stop_all()

    # -- the checks ------------------------------------------------------------------------

    def check(self, dropped: list[str]) -> Invariants:
        return Invariants.read(self, dropped)


@dataclass
class Invariants:
    """What must hold after any fault, each as the list of what breaks it (empty: it holds)."""

    nominal_times_doubled: list[str]
    nominal_times_lost: list[str]
    tick_runs_without_one_fire: list[str]  # a run of the interval not the run of one record
    runs_executed_twice: list[str]
    files_doubled: list[str]
    files_lost: list[str]
    files_executed_twice: list[str]
    open_runs: list[str]
    epochs_going_back: list[str]  # fire ids whose epoch is below an earlier record's
    summary: dict[str, Any]

    @classmethod
    def read(cls, cluster: HaCluster, dropped: list[str]) -> Invariants:
        ticks, files, runs = cluster.fires(TICK), cluster.fires(INBOX), cluster.runs()
        nominal = Counter(f["nominal_time"] for f in ticks)
        times = sorted(nominal)
        tick_run_ids = Counter(f["run_id"] for f in ticks if f["run_id"] is not None)
        tick_runs = [r["id"] for r in runs if r["schedule"] == TICK]
        by_path = Counter(f["path"] for f in files)
        file_runs = {f["path"]: f["run_id"] for f in files}
        executed_runs, executed_files = _executions(cluster.tick_log, cluster.drop_log)
        epochs = [(f["id"], f["epoch"]) for f in ticks + files if f["epoch"] is not None]
        epochs.sort()
        going_back, highest = [], None
        for fire_id, epoch in epochs:
            if highest is not None and epoch < highest:
                going_back.append(f"fire {fire_id}: epoch {epoch} after {highest}")
            highest = epoch if highest is None else max(highest, epoch)
        return cls(
            nominal_times_doubled=sorted(t.isoformat() for t, n in nominal.items() if n > 1),
            nominal_times_lost=[t.isoformat() for t in _never_fired(times)],
            tick_runs_without_one_fire=sorted(
                r
                for r in set(tick_runs) | set(tick_run_ids)
                if tick_run_ids[r] != 1 or r not in tick_runs
            ),
            runs_executed_twice=sorted(r for r, n in executed_runs.items() if n > 1),
            files_doubled=sorted(p for p, n in by_path.items() if n > 1),
            files_lost=sorted(n for n in dropped if file_runs.get(f"inbox/{n}") is None),
            files_executed_twice=sorted(n for n, c in executed_files.items() if c > 1),
            open_runs=sorted(r["id"] for r in runs if r["status"] in OPEN_STATUSES),
            epochs_going_back=going_back,
            summary={
                "nominal_times": len(nominal),
                "tick_outcomes": dict(Counter(f["outcome"] for f in ticks)),
                "files_dropped": len(dropped),
                "file_records": len(files),
                "runs": len(runs),
                "run_statuses": dict(Counter((r["status"], r["status_reason"]) for r in runs)),
                "epochs": dict(Counter(e for _, e in epochs)),
            },
        )

    def broken(self) -> dict[str, list[str]]:
        """The invariants that do not hold, with what breaks each."""
        return {
            name: value
            for name, value in vars(self).items()
            if name != "summary" and isinstance(value, list) and value
        }

    def assert_hold(self) -> None:
        print(f"\ninvariants: {self.summary}")
        assert not self.broken(), self.broken()


def _executions(tick_log: Path, drop_log: Path) -> tuple[Counter[str], Counter[str]]:
    """What the steps logged: executions per run id (both pipelines) and per dropped file."""
    by_run: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    if tick_log.exists():
        by_run.update(tick_log.read_text().split())
    if drop_log.exists():
        for line in drop_log.read_text().splitlines():
            name, run_id = line.split()
            by_file[name] += 1
            by_run[run_id] += 1
    return by_run, by_file


def _never_fired(times: list[datetime]) -> Iterator[datetime]:
    """The interval's nominal times between the first and the last of ``times`` missing."""
    for earlier, later in pairwise(times):
        moment = earlier + INTERVAL
        while moment < later:
            yield moment
            moment += INTERVAL


def now() -> datetime:
    return datetime.now(UTC)
