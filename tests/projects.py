"""Small worlds for tests: a config, a state dir and pipelines written into tmp_path."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("config", "pipelines")  # the folders a user edits in a working copy
_pristine: list[Path] = []


def shipped(*parts: str) -> Path:
    """A path in a pristine copy of the shipped ``config/`` and ``pipelines/``: extracted from
    git's HEAD once per session (the working folders are the user's, and may hold their edits),
    or copied from the checkout when it is not a git repository (an unpacked release)."""
    if not _pristine:
        root = Path(tempfile.mkdtemp(prefix="pipesched-shipped-"))
        atexit.register(shutil.rmtree, root, True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", "HEAD", *SHIPPED],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if archive.returncode == 0:
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(root, filter="data")
        else:
            for folder in SHIPPED:
                shutil.copytree(REPO / folder, root / folder, symlinks=True)
        _pristine.append(root)
    return _pristine[0].joinpath(*parts)


@dataclass
class Project:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config" / "pipesched.yaml"

    @property
    def state_dir(self) -> Path:
        return self.root / "var"

    @property
    def datastore(self) -> Path:
        return self.state_dir / "datastore"

    def pipeline(
        self, name: str, definition: str | dict, scripts: dict[str, str] | None = None
    ) -> Path:
        """Write ``pipelines/<name>/pipeline.yaml`` and its scripts (dedented)."""
        folder = self.root / "pipelines" / name
        folder.mkdir(parents=True, exist_ok=True)
        text = (
            definition
            if isinstance(definition, str)
            else yaml.safe_dump(definition, sort_keys=False)
        )
        (folder / "pipeline.yaml").write_text(textwrap.dedent(text))
        for filename, body in (scripts or {}).items():
            path = folder / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(body))
        return folder

    def config(self):
        from scheduler.definitions.config import load_config

        return load_config(self.config_path)

    def load(self, name: str):
        from scheduler.definitions import find_pipeline, load_pipeline

        config = self.config()
        return load_pipeline(find_pipeline(name, config), config)

    def schedules(self, text: str) -> None:
        """Write ``config/schedules.yaml`` (dedented)."""
        (self.root / "config" / "schedules.yaml").write_text(textwrap.dedent(text))

    def store(self):
        from scheduler.store import Store

        return Store.open(self.config().database_url)

    def token(self, name: str) -> str:
        """A new API token, made with ``pipesched token create`` (the secret it prints)."""
        created = self.cli("token", "create", name)
        assert created.returncode == 0, created.stderr
        return created.stdout.strip().splitlines()[-1]

    def cli(self, *args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        """Run the real ``pipesched`` command against this project."""
        env = {**os.environ, "PIPESCHED_CONFIG": str(self.config_path), "NO_COLOR": "1"}
        if "run" in args or "daemon" in args:  # their event loop must never block
            env["PIPESCHED_ASSERT_OFF_LOOP"] = "1"
        env.update(kwargs.pop("env", {}))
        return subprocess.run(
            [sys.executable, "-m", "scheduler.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=self.root,
            **kwargs,
        )


#: Extra settings of the ``local`` target of every project made: the ``step_mode`` fixture
#: puts ``warm_imports`` here to run a test's steps forked from a zygote.
WARM_LOCAL: dict[str, object] = {}


def make_project(
    root: Path, *, max_workers: int = 4, database_url: str | None = None, **settings
) -> Project:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "pipelines").mkdir(exist_ok=True)
    config = {
        "state_dir": "../var",
        "database": database_url,
        "pipelines_dir": "../pipelines",
        "schedules": "schedules.yaml",
        "datastores": {"default": {"path": None}},
        "compute": {"local": {"type": "local", "max_workers": max_workers, **WARM_LOCAL}},
        "api": {"host": "127.0.0.1", "port": 0},  # parallel test daemons never share a port
        **settings,
    }
    (root / "config" / "pipesched.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (root / "config" / "schedules.yaml").write_text("schedules: []\n")
    return Project(root)
