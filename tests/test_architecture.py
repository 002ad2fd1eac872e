"""The shape of the ``scheduler`` package: import contracts, light imports, and tidy sources.

The import-linter contracts in ``pyproject.toml`` hold the direction between packages; the
checks here hold what they cannot: which modules load only the standard library, imports hidden
inside functions, comments that point outside the repository, and the top of ``scheduler/``.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

import scheduler

PACKAGE = Path(scheduler.__file__).parent
REPO = PACKAGE.parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _env() -> dict[str, str]:
    """The environment for a child interpreter that imports this checkout's ``scheduler``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports not found: install the test tools with pip install -e '.[dev]'")
    return found


def test_import_contracts_hold() -> None:
    """``lint-imports`` keeps every contract of ``[tool.importlinter]`` in pyproject.toml."""
    result = subprocess.run(
        [_lint_imports(), "--no-cache", "--no-logo", "pyproject.toml"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"lint-imports failed:\n{result.stdout}\n{result.stderr}"


# A read through a running daemon, and a step script's logging, must not pay for (or need)
# pipesched's dependencies: these modules load the standard library and our own modules only.
LIGHT_MODULES = [
    "scheduler",
    "scheduler.runtime",
    "scheduler.services",
    "scheduler.services.client",
]

_NEWLY_LOADED = textwrap.dedent(
    """
    import importlib, json, sys
    before = set(sys.modules)
    importlib.import_module(sys.argv[1])
    print(json.dumps(sorted({name.partition(".")[0] for name in set(sys.modules) - before})))
    """
)


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_module_imports_only_the_standard_library(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _NEWLY_LOADED, module],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    foreign = [
        name
        for name in loaded
        if name not in sys.stdlib_module_names
        and name != "scheduler"
        and not name.startswith("_sysconfigdata")  # sysconfig's per-platform data, stdlib
    ]
    assert not foreign, (
        f"importing {module} loads {foreign}: it must need the standard library only"
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_ours(node: ast.stmt) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.partition(".")[0] == "scheduler" for alias in node.names)
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").partition(".")[0] == "scheduler"
    return False


def _function_imports(tree: ast.AST) -> Iterator[list[ast.stmt]]:
    """Runs of consecutive import statements of ours in the bodies of functions (not under
    ``if TYPE_CHECKING:``), each run as one list."""

    def bodies(node: ast.AST, in_function: bool) -> Iterator[list[ast.stmt]]:
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            if field == "body" and isinstance(node, ast.If) and _is_type_checking(node.test):
                continue
            if in_function and block and isinstance(block[0], ast.stmt):
                yield block
            for child in block:
                inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                yield from bodies(child, inner)

    for block in bodies(tree, False):
        run: list[ast.stmt] = []
        for statement in [*block, None]:
            if statement is not None and _imports_ours(statement):
                run.append(statement)
                continue
            if run:
                yield run
            run = []


LAZY = re.compile(r"#\s*lazy:\s*\S")


def test_no_import_of_ours_inside_a_function_without_a_reason() -> None:
    """An import of our own modules inside a function hides a dependency from whoever reads
    the module's top, and often a cycle. The few that keep a start fast or an optional extra
    unloaded say so in a comment on the import's line, or in one on the line above a run of
    such imports: ``# lazy: <why>``."""
    unmarked = []
    for path in SOURCES:
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for run in _function_imports(ast.parse(source, str(path))):
            first = run[0].lineno
            above = lines[first - 2] if first >= 2 else ""
            if LAZY.match(above.strip()):
                continue
            unmarked += [
                f"{_rel(path)}:{node.lineno}: {lines[node.lineno - 1].strip()}"
                for node in run
                if not LAZY.search(lines[node.lineno - 1])
            ]
    assert not unmarked, (
        f"{len(unmarked)} imports of our modules inside functions with no '# lazy: <why>' "
        "comment (move them to the top of the module, or say why they must wait):\n"
        + "\n".join(unmarked)
    )


# Documents outside the repository, and issue numbers, mean nothing to a reader of the code.
# The documents' names are matched as written (capitals), so "reliability" as a word is fine.
OUTSIDE_REFERENCE = re.compile(
    r"\bDESIGN\b|\bRELIABILITY\b|\bSTYLE\.md\b|\bUX\.md\b|\b(?i:issues?)\s*#?\d+"
)


def _comments_and_docstrings(source: str) -> Iterator[tuple[int, str]]:
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                yield body[0].lineno, body[0].value.value


def test_comments_point_at_nothing_outside_the_repository() -> None:
    found = []
    for path in SOURCES:
        for lineno, text in _comments_and_docstrings(path.read_text(encoding="utf-8")):
            for match in OUTSIDE_REFERENCE.finditer(text):
                found.append(f"{_rel(path)}:{lineno}: ...{match.group(0)}...")
    assert not found, (
        "comments and docstrings must explain themselves, not refer to documents outside the "
        "repository or to issue numbers:\n" + "\n".join(found)
    )


def test_nothing_flat_at_the_top_of_the_package() -> None:
    """Every module lives in the package of its job; only these two sit at the top."""
    flat = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "runtime.py"]
