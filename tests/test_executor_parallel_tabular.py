"""parallel_run over rows (a ``tabular:`` input) and partitions, written as pipeline.yaml: real
executor, real worker processes, real files. The SDK's side is in test_sdk_tabular_datasets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.core.errors import DefinitionErrors
from scheduler.executor.parallel.tables import plan_pieces, read_pieces
from tests.projects import Project, make_project
from tests.test_executor import execute, steps_of

pd = pytest.importorskip("pandas")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


def tabular_pipeline(project: Project, entry: str, **fields: object) -> None:
    step = {
        "type": "parallel_run",
        "entry_script": "entry.py",
        "input": "${{parameters.rows}}",
        "output": "results",
        "tabular": {"format": "delimited"},
        "process_count_per_node": 2,
        "run_max_try": 1,
        "allow_reuse": False,
        **fields,
    }
    definition = {
        "parameters": {"rows": {"type": "path", "default": "rows"}},
        "data": {"results": {}},
        "steps": {"score": step},
    }
    project.pipeline("tab", definition, {"entry.py": entry})


def write_rows(project: Project, files: int, rows: int, folder: str = "rows") -> Path:
    place = project.datastore / folder
    place.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        lines = ["file;row;label"] + [f"{f};{r};{'bad' if r == 7 else 'ok'}" for r in range(rows)]
        (place / f"f{f}.csv").write_text("\n".join(lines) + "\n")
    return place


def output_rows(detail) -> list[str]:
    folder = Path(steps_of(detail)["score"]["outputs"]["results"])
    return (folder / "parallel_run_step.txt").read_text().splitlines()


def step_log(detail) -> str:
    attempt = [a for a in detail.attempts if a.step == "score"][-1]
    return Path(attempt.log_path).read_text()


# ---- cutting files into mini-batches ------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 41, 100, 1000, 1 << 20])
def test_every_row_is_read_once_whatever_the_mini_batch_size(tmp_path: Path, size: int):
    files = {
        "crlf.csv": b"a,b\r\n1,x\r\n22,yy\r\n333,zzz\r\n",
        "no_final_newline.csv": b"a,b\n4,long text here\n5,w",
        "header_only.csv": b"a,b\n",
        "bom.csv": "\ufeffa,b\n6,é\n7,ü\n".encode(),
        "empty.csv": b"",
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    options = {"format": "delimited", "encoding": "utf8bom"}
    batches = plan_pieces(paths, options, size)
    frames = [read_pieces(pieces, options) for pieces in batches]
    got = pd.concat(frames, ignore_index=True)
    assert got["a"].tolist() == [1, 22, 333, 4, 5, 6, 7]
    assert got["b"].tolist() == ["x", "yy", "zzz", "long text here", "w", "é", "ü"]
    assert all(len(f.columns) == 2 for f in frames)


def test_multi_line_values_keep_their_files_whole(tmp_path: Path):
    (tmp_path / "notes.csv").write_text('id,note\n1,"two\nlines"\n2,plain\n')
    options = {"format": "delimited", "support_multi_line": True}
    (pieces,) = plan_pieces([str(tmp_path / "notes.csv")], options, 4)
    assert read_pieces(pieces, options)["note"].tolist() == ["two\nlines", "plain"]


# ---- steps --------------------------------------------------------------------------------------

COUNT_ROWS = """
import pandas as pd
def run(mini_batch):
    assert isinstance(mini_batch, pd.DataFrame), type(mini_batch)
    return [f"{f} {r} {len(mini_batch)}" for f, r in zip(mini_batch["file"], mini_batch["row"])]
"""


def test_a_yaml_tabular_step_reads_rows_with_its_options(project: Project):
    write_rows(project, files=4, rows=30)
    tabular_pipeline(
        project, COUNT_ROWS, tabular={"separator": ";"}, mini_batch_size="200", run_max_try=1
    )
    detail = execute(project, "tab")
    assert detail.run.status == "completed", step_log(detail)
    rows = [row.split() for row in output_rows(detail)]
    assert [(int(f), int(r)) for f, r, _ in rows] == [(f, r) for f in range(4) for r in range(30)]
    assert max(int(n) for _, _, n in rows) < 30  # 200 bytes hold fewer rows than a file


FAIL_ON_BAD = """
def run(mini_batch):
    if (mini_batch["label"] == "bad").any():
        raise ValueError("a bad row")
    return mini_batch
"""


@pytest.mark.parametrize(("threshold", "status"), [(-1, "completed"), (3, "failed")])
def test_failed_rows_count_against_error_threshold(project: Project, threshold: int, status: str):
    write_rows(project, files=2, rows=10)  # row 7 of each file is bad
    tabular_pipeline(
        project,
        FAIL_ON_BAD,
        tabular={"separator": ";"},
        mini_batch_size=40,  # a few rows per mini-batch
        error_threshold=threshold,
        process_count_per_node=1,
    )
    detail = execute(project, "tab")
    assert detail.run.status == status
    log = step_log(detail)
    if status == "failed":
        assert "more than error_threshold 3" in log
    else:
        metrics = {m.name: m.value for m in detail.metrics if m.step == "score"}
        assert metrics["items_total"] == 20
        assert 2 <= metrics["items_failed"] < 20  # the rows of the two failed mini-batches
        assert len(output_rows(detail)) == 20 - metrics["items_failed"]


def test_partition_keys_make_one_mini_batch_per_folder_value(project: Project):
    for user in ("ann", "bob"):
        for season in ("fall", "spring"):
            write_rows(project, files=1, rows=2, folder=f"rows/{user}/{season}")
    entry = """
    def run(mini_batch, mini_batch_context):
        keys = mini_batch_context.partition_key_value
        return [f"{keys['user']} {len(mini_batch)}" for _ in range(len(mini_batch))]
    """
    tabular_pipeline(
        project,
        entry,
        tabular={"separator": ";"},
        partition_format="{user}/{season}/*.csv",
        partition_keys=["user"],
    )
    detail = execute(project, "tab")
    assert detail.run.status == "completed", step_log(detail)
    assert output_rows(detail) == ["ann 4"] * 4 + ["bob 4"] * 4
    assert "2 partitions by user" in step_log(detail)


def test_a_file_outside_the_partition_format_fails_the_step_naming_it(project: Project):
    write_rows(project, files=1, rows=2, folder="rows/ann")
    write_rows(project, files=1, rows=2, folder="rows")
    tabular_pipeline(
        project, FAIL_ON_BAD, partition_format="{user}/f0.csv", partition_keys=["user"]
    )
    detail = execute(project, "tab")
    assert detail.run.status == "failed"
    assert "does not match partition_format" in step_log(detail)


def test_partition_keys_over_files_give_file_paths(project: Project):
    for genre in ("disco", "piano"):
        folder = project.datastore / "rows" / genre
        folder.mkdir(parents=True)
        for take in range(3):
            (folder / f"{take}.wav").write_bytes(b"x" * (take + 1))
    entry = """
    import os
    def run(mini_batch, mini_batch_context):
        genre = mini_batch_context.partition_key_value["genre"]
        return [f"{genre} {os.path.basename(f)} {len(mini_batch)}" for f in mini_batch]
    """
    tabular_pipeline(
        project,
        entry,
        tabular=None,
        partition_format="{genre}/{take}.wav",
        partition_keys=["genre"],
    )
    detail = execute(project, "tab")
    assert detail.run.status == "completed", step_log(detail)
    assert output_rows(detail) == [f"{g} {t}.wav 3" for g in ("disco", "piano") for t in range(3)]


def test_parquet_files_are_read_whole(project: Project):
    pytest.importorskip("pyarrow")
    place = project.datastore / "rows"
    place.mkdir(parents=True)
    for f in range(3):
        pd.DataFrame({"file": [f] * 4, "row": range(4)}).to_parquet(place / f"f{f}.parquet")
    tabular_pipeline(project, COUNT_ROWS, tabular={"format": "parquet"}, mini_batch_size=1)
    detail = execute(project, "tab")
    assert detail.run.status == "completed", step_log(detail)
    assert output_rows(detail) == [f"{f} {r} 4" for f in range(3) for r in range(4)]


def test_a_step_interpreter_without_pandas_fails_before_init_naming_the_fix(
    project: Project, tmp_path: Path
):
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    probe = subprocess.run([python, "-c", "import pandas"], capture_output=True)
    assert probe.returncode != 0
    write_rows(project, files=1, rows=3)
    tabular_pipeline(project, COUNT_ROWS, environment={"python": str(python)})
    detail = execute(project, "tab")
    assert detail.run.status == "failed"
    log = step_log(detail)
    assert "needs pandas" in log and "pip install pandas" in log


# ---- what validation says -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tabular": None, "mini_batch_size": "1MB"}, "is a size, for tabular inputs"),
        ({"partition_format": "{a}/*.csv", "partition_keys": ["b"]}, "are not keys of"),
        ({"partition_keys": ["a"]}, "are not keys of partition_format None"),
        (
            {"partition_format": "{a}/*.csv", "partition_keys": ["a"], "mini_batch_size": 5},
            "either partition_keys or mini_batch_size",
        ),
        ({"node_count": "two"}, "expected a number or a ${{parameters.NAME}}"),
        ({"tabular": {"set_column_types": {"x": "long"}}}, "unknown type 'long'"),
    ],
)
def test_validation_explains_what_a_tabular_step_cannot_be(
    project: Project, fields: dict, message: str
):
    tabular_pipeline(project, COUNT_ROWS, **fields)
    with pytest.raises(DefinitionErrors) as caught:
        project.load("tab")
    assert message in str(caught.value)


def test_a_new_file_matching_the_input_glob_is_not_hidden_by_reuse(project: Project):
    write_rows(project, files=2, rows=3)
    tabular_pipeline(project, COUNT_ROWS, tabular={"separator": ";"}, allow_reuse=True)
    definition = project.root / "pipelines" / "tab" / "pipeline.yaml"
    # The parameter's value is the glob, as for Dataset.Tabular over (datastore, "rows/*.csv").
    definition.write_text(definition.read_text().replace("default: rows", "default: rows/*.csv"))
    assert execute(project, "tab").run.status == "completed"
    again = execute(project, "tab")
    assert steps_of(again)["score"]["status"] == "reused"
    (project.datastore / "rows" / "f9.csv").write_text("file;row;label\n9;0;ok\n")
    third = execute(project, "tab")
    assert steps_of(third)["score"]["status"] == "completed"
    assert output_rows(third)[-1].startswith("9 0 ")
