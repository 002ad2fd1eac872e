"""What an installer sees: PostgreSQL support is the ``postgres`` extra (a ``postgresql://``
store without it is one line naming the extra), and the wheel carries its license, metadata and
the files ``/docs`` serves."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from scheduler.store.engine import make_engine
from tests.projects import make_project

REPO = Path(__file__).resolve().parent.parent

BLOCK_PSYCOPG = """
import sys


class NoPsycopg:
    '''Makes this interpreter behave as one where psycopg was never installed.'''

    def find_spec(self, name, path=None, target=None):
        if name == "psycopg" or name.startswith(("psycopg.", "psycopg_")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoPsycopg())
"""


@pytest.fixture
def without_psycopg(tmp_path: Path) -> dict[str, str]:
    """The environment of a subprocess in which ``import psycopg`` fails."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK_PSYCOPG)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    probe = subprocess.run(
        [sys.executable, "-c", "import psycopg"], env=env, capture_output=True, text=True
    )
    assert probe.returncode != 0 and "psycopg" in probe.stderr
    return env


@pytest.mark.parametrize(
    "url", ["postgresql://nobody@127.0.0.1:9/none", "postgresql+psycopg://nobody@127.0.0.1:9/none"]
)
def test_a_postgres_store_without_psycopg_names_the_extra(tmp_path: Path, without_psycopg, url):
    project = make_project(tmp_path / "p", database_url=url)
    result = project.cli("runs", env=without_psycopg)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "pip install 'pipesched[postgres]'" in line
    assert result.stdout == ""


def test_a_plain_postgresql_url_uses_psycopg():
    """SQLAlchemy's default for ``postgresql://`` is psycopg2, which pipesched does not ship."""
    engine = make_engine("postgresql://nobody@127.0.0.1:9/none")  # no connection is made
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


@pytest.mark.slow
def test_the_wheel_carries_license_metadata_and_docs_assets(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("pipesched-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
        (license_name,) = (n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        license_text = archive.read(license_name).decode()
    assert metadata["License-Expression"] == "MIT"
    assert license_text.startswith("MIT License") and "pipesched authors" in license_text
    assert any(
        c.startswith("Programming Language :: Python :: 3") for c in metadata.get_all("Classifier")
    )
    requires = metadata.get_all("Requires-Dist")
    psycopg = [r for r in requires if r.startswith("psycopg")]
    assert psycopg and all('extra == "postgres"' in r for r in psycopg)
    assert "postgres" in metadata.get_all("Provides-Extra")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"):
        assert f"scheduler/api/swagger_ui/{asset}" in names
