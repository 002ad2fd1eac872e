"""Runs a re-created Azure ML SDK v1 notebook as Jupyter would, against a real pipesched.

A re-creation is a folder under ``tests/azure_notebooks/``: ``notebook.py`` holds the cells
(``# %%`` starts a cell, as in VS Code's and Jupytext's percent format), next to the step
scripts the cells name. The cells keep the notebook's calls, argument names, order and flow;
their imports name ``scheduler.sdk`` instead of ``azureml.*``, and data the notebook downloads
is generated here instead. A cell marked ``# %% [writefile NAME]`` stands for the notebook's
``%%writefile NAME`` cell: the file's text is ``written/NAME`` in the folder.

The notebook runs in a working folder of its own, with every cell in one namespace and the value
of a cell's last expression shown, as a kernel does. A real ``pipesched daemon`` serves the
project in both modes, so that REST cells and schedules have something to talk to:

- **embedded**: the workspace line stays ``ws = Workspace.from_config()``, which finds the
  project's config through ``$PIPESCHED_CONFIG``;
- **daemon**: the workspace line, and only it, becomes ``ws = Workspace(url=..., token=...)``.

``$PIPESCHED_TOKEN`` holds a token in both modes, as the migration guide tells a user to set it
for a notebook's ``requests.post(endpoint, headers=auth.get_authentication_header())`` cell.
"""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
import socket
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import wait_until
from tests.projects import Project, make_project

NOTEBOOKS = Path(__file__).parent
EMBEDDED, DAEMON = "embedded", "daemon"
MODES = (EMBEDDED, DAEMON)

_CELL_MARK = re.compile(r"^# %%(?P<title>.*)$", re.MULTILINE)
_WRITEFILE = re.compile(r"^\s*\[writefile (?P<name>[\w.\-/]+)\]\s*$")
# The one line a user changes: ``ws = Workspace.from_config()`` (any variable, any arguments).
_WORKSPACE_LINE = re.compile(
    r"^(?P<var>\w+) = Workspace\.from_config\((?P<args>[^\n]*)\)$", re.MULTILINE
)


@dataclass
class Cell:
    number: int
    title: str
    source: str

    @property
    def writes_file(self) -> str | None:
        found = _WRITEFILE.match(self.title)
        return found["name"] if found else None

    def first_line(self) -> str:
        """The cell's first line of code (its comments skipped), to name it in a failure."""
        lines = [line for line in self.source.splitlines() if line.strip()]
        code = [line for line in lines if not line.lstrip().startswith("#")]
        return (code or lines or [self.title.strip()])[0]


class NotebookCellFailed(AssertionError):
    """A cell raised: names the notebook, the cell and its first line, and what it raised."""

    def __init__(self, notebook: str, cell: Cell, error: BaseException, output: str) -> None:
        self.cell = cell
        self.error = error
        shown = "".join(traceback.format_exception(error)[-6:])
        super().__init__(
            f"{notebook}: cell {cell.number} ({cell.first_line()!r}) raised "
            f"{type(error).__name__}: {error}\n--- its output:\n{output[-3000:]}\n"
            f"--- traceback:\n{shown}"
        )


def recreations() -> list[str]:
    """The re-created notebooks: every folder here that holds a ``notebook.py``."""
    return sorted(p.parent.name for p in NOTEBOOKS.glob("*/notebook.py"))


def cells_of(notebook: Path) -> list[Cell]:
    """The cells of a re-creation, in order; what precedes the first mark is its header."""
    text = notebook.read_text()
    marks = list(_CELL_MARK.finditer(text))
    cells = []
    for number, mark in enumerate(marks, start=1):
        end = marks[number].start() if number < len(marks) else len(text)
        cells.append(Cell(number, mark["title"], text[mark.end() : end].strip("\n")))
    return cells


def with_workspace_line(cells: list[Cell], line: str | None) -> list[Cell]:
    """The cells with the workspace line replaced by ``VAR = <line>`` (None keeps it). A
    re-creation has exactly one workspace line; anything else is a mistake in it."""
    found = [(cell, m) for cell in cells for m in _WORKSPACE_LINE.finditer(cell.source)]
    assert len(found) == 1, f"expected one `ws = Workspace.from_config()` line, found {found}"
    if line is None:
        return cells
    (target, match), changed = found[0], []
    for cell in cells:
        if cell is target:
            source = _WORKSPACE_LINE.sub(f"{match['var']} = {line}", cell.source, count=1)
            cell = Cell(cell.number, cell.title, source)
        changed.append(cell)
    return changed


def with_named_changes(cells: list[Cell], changes: dict[str, str]) -> list[Cell]:
    """The cells with each text of ``changes`` replaced; a text found other than once is a
    mistake in the test (the notebook no longer reads as the guide says)."""
    for old, new in changes.items():
        hits = sum(cell.source.count(old) for cell in cells)
        assert hits == 1, f"named change: expected {old!r} once in the notebook, found {hits}"
        cells = [Cell(c.number, c.title, c.source.replace(old, new)) for c in cells]
    return cells


def run_cell(cell: Cell, namespace: dict[str, Any], filename: str) -> None:
    """Execute one cell; a final expression is shown as a kernel shows it (its repr)."""
    tree = ast.parse(cell.source, filename=filename)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), filename, "eval"), namespace)
        if value is not None:
            print(repr(value))


@dataclass
class NotebookRun:
    """What a notebook left behind: its namespace (the variables a user inspects after the
    last cell) and everything its cells printed."""

    namespace: dict[str, Any]
    output: str

    def __getitem__(self, name: str) -> Any:
        return self.namespace[name]


@dataclass
class NotebookWorld:
    """A pipesched installation for one notebook: its project (config, store, datastores), a
    running daemon with its URL and a token, and the notebook's working folder."""

    name: str
    project: Project
    folder: Path
    url: str
    token: str
    mode: str

    def datastore(self, name: str = "default") -> Path:
        return self.project.config().datastores[name].path

    def workspace_line(self) -> str | None:
        if self.mode == EMBEDDED:
            return "Workspace.from_config()"
        return f"Workspace(url={self.url!r}, token={self.token!r})"

    def run(
        self, monkeypatch: pytest.MonkeyPatch, named_changes: dict[str, str] | None = None
    ) -> NotebookRun:
        """Run the notebook's cells in order in one namespace; the first that raises fails the
        test with ``NotebookCellFailed``, which names it. ``named_changes`` (text → its
        replacement) are the edits the migration guide names for this notebook, each made
        where the text occurs exactly once."""
        monkeypatch.chdir(self.folder)
        monkeypatch.setenv("PIPESCHED_CONFIG", str(self.project.config_path))
        monkeypatch.setenv("PIPESCHED_TOKEN", self.token)
        monkeypatch.delenv("PIPESCHED_URL", raising=False)
        cells = with_workspace_line(cells_of(self.folder / "notebook.py"), self.workspace_line())
        cells = with_named_changes(cells, named_changes or {})
        namespace: dict[str, Any] = {"__name__": "__main__"}
        shown = io.StringIO()
        for cell in cells:
            filename = f"{self.name}/notebook.py[cell {cell.number}]"
            try:
                with redirect_stdout(_Tee(shown)):
                    if cell.writes_file:
                        write_file_cell(self.folder, cell.writes_file)
                    else:
                        run_cell(cell, namespace, filename)
            except Exception as error:
                raise NotebookCellFailed(self.name, cell, error, shown.getvalue()) from error
        return NotebookRun(namespace, shown.getvalue())


class _Tee(io.TextIOBase):
    """Stdout for the cells: kept for the checks and passed on to pytest's capture."""

    def __init__(self, keep: io.StringIO) -> None:
        self._keep = keep
        self._through = sys.stdout

    def write(self, text: str) -> int:
        self._keep.write(text)
        return self._through.write(text)

    def flush(self) -> None:
        self._through.flush()


def write_file_cell(folder: Path, name: str) -> None:
    """A ``%%writefile NAME`` cell: the text kept as ``written/NAME`` lands in the notebook's
    folder, where the notebook's cell would have written it."""
    shutil.copyfile(folder / "written" / name, folder / name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_world(
    tmp_path: Path,
    daemons: Callable[..., Any],
    name: str,
    mode: str,
    *,
    compute: tuple[str, ...] = ("cpu-cluster",),
    datastores: tuple[str, ...] = ("workspaceblobstore",),
) -> NotebookWorld:
    """The notebook's world: a project whose ``pipesched.yaml`` declares the compute targets
    and datastores the notebook names (the "workspace" a user sets up once), the notebook's
    folder copied to a working folder of its own, and a daemon on a fixed port (so a published
    pipeline's endpoint is the URL the daemon serves)."""
    home = tmp_path / "home"
    project = make_project(
        home,
        api={"host": "127.0.0.1", "port": free_port()},
        compute={"local": {"type": "local", "max_workers": 4}}
        | {target: {"type": "local", "max_workers": 4} for target in compute},
        datastores={"default": {"path": None}}
        | {store: {"path": f"../var/{store}"} for store in datastores},
    )
    for store in datastores:
        (project.state_dir / store).mkdir(parents=True, exist_ok=True)
    folder = tmp_path / "notebooks" / name
    shutil.copytree(NOTEBOOKS / name, folder, ignore=shutil.ignore_patterns("__pycache__"))
    daemon = start_daemon(project, daemons)
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    created = project.cli("token", "create", f"notebook-{mode}")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    return NotebookWorld(name, project, folder, listening["url"], token, mode)


def start_daemon(project: Project, daemons: Callable[..., Any], attempts: int = 3) -> Any:
    """Start the project's daemon on the port its config names; when another process took that
    port between ``free_port()`` and the daemon's bind, give the config another free port."""
    for attempt in range(1, attempts + 1):
        daemon = daemons(project)
        try:
            return daemon.start()
        except AssertionError:
            if attempt == attempts or "cannot listen on" not in daemon.log():
                raise
        settings = yaml.safe_load(project.config_path.read_text())
        settings["api"]["port"] = free_port()
        project.config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
    raise AssertionError("unreachable")


def runs_of(project: Project) -> Iterator[dict[str, Any]]:
    """Every run the project's store holds, as ``pipesched runs --json`` lists it."""
    listed = project.cli("runs", "--json", "--limit", "0")
    assert listed.returncode == 0, listed.stderr
    yield from json.loads(listed.stdout)
