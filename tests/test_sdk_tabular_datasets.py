"""Tabular datasets from a notebook, as Azure ML SDK v1 notebooks use them: read into pandas,
partitioned with ``partition_by``, and scored by a ParallelRunStep whose entry script gets
DataFrames, one mini-batch per partition with ``partition_keys``; and a PipelineParameter as a
ParallelRunStep setting, changed at submit. Embedded on a real SQLite store (runs in a real child
process) and once through a real daemon."""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import pytest

from scheduler.sdk import (
    DataPath,
    Dataset,
    DataType,
    Experiment,
    ParallelRunConfig,
    ParallelRunStep,
    Pipeline,
    PipelineData,
    PipelineParameter,
    SdkError,
    Workspace,
)
from scheduler.sdk._warn import reset_warnings
from tests.conftest import wait_until
from tests.projects import Project, make_project

pd = pytest.importorskip("pandas")

STORES, BRANDS, DAYS = (1000, 1001), ("dominicks", "tropicana"), 3


@pytest.fixture(autouse=True)
def _fresh_warnings():
    reset_warnings()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = make_project(tmp_path / "home")
    write_sales(project.datastore / "sales")
    return project


@pytest.fixture
def ws(project: Project) -> Workspace:
    return Workspace.from_config(path=str(project.config_path))


def write_sales(folder: Path) -> None:
    """One CSV per day: week, store, brand, income (an income per row that names its row)."""
    folder.mkdir(parents=True)
    for day in range(DAYS):
        lines = ["week,store,brand,income"]
        for store in STORES:
            for brand in BRANDS:
                lines.append(f"{day},{store},{brand},{day * 100 + store % 10 * 10 + len(brand)}")
        (folder / f"day{day}.csv").write_text("\n".join(lines) + "\n")


def all_sales(project: Project) -> pd.DataFrame:
    """What the sales files hold, read by pandas itself."""
    files = sorted((project.datastore / "sales").glob("*.csv"))
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def entry_scripts(root: Path, **scripts: str) -> Path:
    folder = root / "Code"
    folder.mkdir(exist_ok=True)
    for name, body in scripts.items():
        (folder / name).write_text(textwrap.dedent(body))
    return folder


def result_rows(run, step_name: str, output: PipelineData, file_name: str) -> list[str]:
    """The notebook's last cell: download the step's output, read the append_row file."""
    batch_output = run.find_step_run(step_name)[0].get_output_data(output.name)
    target = tempfile.mkdtemp()
    batch_output.download(local_path=target)
    return Path(target, batch_output.path_on_datastore, file_name).read_text().splitlines()


def step_metrics(run, step_name: str) -> dict:
    return run.find_step_run(step_name)[0].get_metrics()


# ---- to_pandas_dataframe ------------------------------------------------------------------------


def test_to_pandas_dataframe_reads_every_csv_of_a_glob_in_order(ws: Workspace, project: Project):
    store = ws.get_default_datastore()
    dataset = Dataset.Tabular.from_delimited_files(path=(store, "sales/*.csv"))
    frame = dataset.to_pandas_dataframe()
    assert frame.to_dict("records") == all_sales(project).to_dict("records")
    assert list(frame.columns) == ["week", "store", "brand", "income"]
    assert str(frame["income"].dtype) == "int64"


def test_a_folder_a_datapath_and_a_list_of_paths_read_the_same_rows(
    ws: Workspace, project: Project
):
    store = ws.get_default_datastore()
    nested = project.datastore / "nested" / "more"
    nested.mkdir(parents=True)
    (project.datastore / "sales" / "day0.csv").rename(project.datastore / "nested" / "day0.csv")
    (project.datastore / "sales" / "day1.csv").rename(nested / "day1.csv")
    folder = Dataset.Tabular.from_delimited_files(path=store.path("nested/"))
    listed = Dataset.Tabular.from_delimited_files(
        path=[DataPath(store, "nested"), (store, "sales/day2.csv")]
    )
    assert len(folder.to_pandas_dataframe()) == 2 * len(STORES) * len(BRANDS)
    assert listed.to_pandas_dataframe()["week"].tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_take_and_skip_window_the_records(ws: Workspace):
    dataset = Dataset.Tabular.from_delimited_files(path=(ws.get_default_datastore(), "sales"))
    everything = dataset.to_pandas_dataframe()
    assert dataset.take(5).to_pandas_dataframe().equals(everything.head(5))
    assert (
        dataset.skip(10).to_pandas_dataframe().equals(everything.iloc[10:].reset_index(drop=True))
    )
    middle = dataset.skip(3).take(4).to_pandas_dataframe()
    assert middle.equals(everything.iloc[3:7].reset_index(drop=True))


def test_reading_options_are_azures(ws: Workspace, project: Project):
    raw = project.datastore / "raw"
    raw.mkdir()
    (raw / "a.tsv").write_text("7\tx\t2024-01-02\n8\ty\t2024-02-03\n")
    (raw / "b.tsv").write_text("9\tz\t2024-03-04\n")
    dataset = Dataset.Tabular.from_delimited_files(
        path=(ws.get_default_datastore(), "raw/*.tsv"),
        separator="\t",
        header=False,
        include_path=True,
        set_column_types={"Column1": DataType.to_float(), "Column3": DataType.to_datetime()},
    )
    frame = dataset.to_pandas_dataframe()
    assert list(frame.columns) == ["Path", "Column1", "Column2", "Column3"]
    assert [Path(p).name for p in frame["Path"]] == ["a.tsv", "a.tsv", "b.tsv"]
    assert frame["Column1"].tolist() == [7.0, 8.0, 9.0]
    assert frame["Column3"].dt.month.tolist() == [1, 2, 3]


def test_partition_format_adds_the_keys_as_last_columns(ws: Workspace, project: Project):
    for region in ("north", "south"):
        folder = project.datastore / "by_region" / region
        folder.mkdir(parents=True)
        (folder / "part.csv").write_text("item,qty\npen,1\n")
    dataset = Dataset.Tabular.from_delimited_files(
        path=(ws.get_default_datastore(), "by_region/*/*.csv"),
        partition_format="by_region/{region}/part.csv",
    )
    assert dataset.partition_keys == ["region"]
    frame = dataset.to_pandas_dataframe()
    assert frame.to_dict("records") == [
        {"item": "pen", "qty": 1, "region": "north"},
        {"item": "pen", "qty": 1, "region": "south"},
    ]


def test_a_path_with_no_data_fails_validation_unless_told_not_to(ws: Workspace):
    store = ws.get_default_datastore()
    with pytest.raises(SdkError, match="cannot load any data"):
        Dataset.Tabular.from_delimited_files(path=(store, "nowhere/*.csv"))
    dataset = Dataset.Tabular.from_delimited_files(path=(store, "nowhere/*.csv"), validate=False)
    assert dataset.to_pandas_dataframe().empty


def test_parquet_without_pyarrow_names_the_package_to_install(ws: Workspace, project: Project):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyarrow is installed here")
    (project.datastore / "pq").mkdir()
    (project.datastore / "pq" / "a.parquet").write_bytes(b"PAR1")
    dataset = Dataset.Tabular.from_parquet_files(path=(ws.get_default_datastore(), "pq"))
    with pytest.raises(SdkError, match="pip install pyarrow"):
        dataset.to_pandas_dataframe()


def test_parquet_files_read_with_pyarrow(ws: Workspace, project: Project):
    pytest.importorskip("pyarrow")
    (project.datastore / "pq").mkdir()
    all_sales(project).to_parquet(project.datastore / "pq" / "a.parquet")
    dataset = Dataset.Tabular.from_parquet_files(path=(ws.get_default_datastore(), "pq"))
    assert dataset.to_pandas_dataframe().equals(all_sales(project))


# ---- ParallelRunStep over rows ------------------------------------------------------------------

SCORE_ROWS = """
    import pandas as pd

    def init():
        global factor
        factor = 2

    def run(mini_batch):
        if not isinstance(mini_batch, pd.DataFrame):
            raise TypeError(f"expected a DataFrame, got {type(mini_batch).__name__}")
        scored = mini_batch[["week", "store", "brand"]].copy()
        scored["score"] = mini_batch["income"] * factor
        return scored
"""


def test_a_tabular_parallel_run_step_scores_every_row_once_in_order(
    ws: Workspace, project: Project
):
    many = project.datastore / "many"
    many.mkdir()
    rows = []
    for part in range(3):
        lines = ["week,store,brand,income"]
        for i in range(120):
            rows.append((part, i, f"b{i % 7}", part * 1000 + i))
            lines.append(f"{part},{i},b{i % 7},{part * 1000 + i}")
        (many / f"part{part}.csv").write_text("\n".join(lines) + "\n")
    code = entry_scripts(project.root, **{"score.py": SCORE_ROWS})
    store = ws.get_default_datastore()
    dataset = Dataset.Tabular.from_delimited_files(path=store.path("many/"), validate=False)
    output = PipelineData(name="inferences", datastore=store)
    config = ParallelRunConfig(
        source_directory=str(code),
        entry_script="score.py",
        mini_batch_size="1KB",
        error_threshold=5,
        output_action="append_row",
        append_row_file_name="scores.txt",
        environment=None,
        compute_target="local",
        node_count=1,
        process_count_per_node=2,
        run_invocation_timeout=60,
    )
    step = ParallelRunStep(
        name="score-rows",
        inputs=[dataset.as_named_input("many")],
        output=output,
        parallel_run_config=config,
        allow_reuse=False,
    )
    run = Experiment(ws, "tabular").submit(Pipeline(workspace=ws, steps=[step]))
    assert run.wait_for_completion(show_output=False, timeout_seconds=120) == "Finished"

    scored = result_rows(run, "score-rows", output, "scores.txt")
    assert scored == [f"{w} {s} {b} {i * 2}" for w, s, b, i in rows]
    metrics = step_metrics(run, "score-rows")
    assert metrics["items_total"] == 360 and metrics["items_failed"] == 0
    assert metrics["mini_batches_total"] > 3  # about 1KB each: files are cut between rows


def test_partition_by_then_partition_keys_gives_one_mini_batch_per_partition(
    ws: Workspace, project: Project
):
    store = ws.get_default_datastore()
    dataset = Dataset.Tabular.from_delimited_files(path=(store, "sales/*.csv"))
    partitioned = dataset.partition_by(
        partition_keys=["store", "brand"], target=(store, "by_store"), name="partitioned_sales"
    )
    assert partitioned.partition_keys == ["store", "brand"]
    (guid,) = os.listdir(project.datastore / "by_store")
    written = sorted(
        str(p.relative_to(project.datastore / "by_store" / guid))
        for p in (project.datastore / "by_store" / guid).rglob("*.csv")
    )
    assert written == [f"{s}/{b}/part-00000.csv" for s in STORES for b in BRANDS]
    back = partitioned.to_pandas_dataframe()
    assert list(back.columns) == ["week", "income", "store", "brand"]  # keys come last
    assert str(back["store"].dtype) == "int64"

    code = entry_scripts(
        project.root,
        **{
            "total.py": """
            def init():
                pass

            def run(mini_batch, mini_batch_context):
                keys = mini_batch_context.partition_key_value
                mini_batch["total"] = mini_batch["income"].sum()
                mini_batch["key_type"] = type(keys["store"]).__name__
                mini_batch["rows_in_batch"] = len(mini_batch)
                return mini_batch
            """
        },
    )
    output = PipelineData(name="inferences", datastore=store)
    config = ParallelRunConfig(
        source_directory=str(code),
        entry_script="total.py",
        partition_keys=["store", "brand"],
        error_threshold=5,
        output_action="append_row",
        append_row_file_name="revenue_outputs.txt",
        environment=None,
        compute_target="local",
        node_count=2,
        run_invocation_timeout=600,
    )
    step = ParallelRunStep(
        name="summarize-revenue",
        inputs=[partitioned.as_named_input("partitioned_tabular_input")],
        output=output,
        parallel_run_config=config,
        allow_reuse=False,
    )
    run = Experiment(ws, "tabular-dataset-partition").submit(Pipeline(workspace=ws, steps=[step]))
    assert run.wait_for_completion(show_output=False, timeout_seconds=120) == "Finished"

    rows = result_rows(run, "summarize-revenue", output, "revenue_outputs.txt")
    frame = pd.DataFrame(
        [r.split(" ") for r in rows],
        columns=["week", "income", "store", "brand", "total", "key_type", "rows_in_batch"],
    )
    sales = all_sales(project)
    assert len(frame) == len(sales)
    for (store_id, brand), group in frame.groupby(["store", "brand"]):
        expected = sales[(sales["store"] == int(store_id)) & (sales["brand"] == brand)]
        assert set(group["total"]) == {str(expected["income"].sum())}
        assert set(group["rows_in_batch"]) == {str(DAYS)}  # the whole partition, one batch
    assert set(frame["key_type"]) == {"int"}
    assert step_metrics(run, "summarize-revenue")["mini_batches_total"] == 4


def test_partition_by_keeps_awkward_key_values_and_dates(ws: Workspace, project: Project):
    odd = project.datastore / "odd"
    odd.mkdir()
    (odd / "a.csv").write_text(
        "team,day,n\nred/blue,2024-01-02,1\n50%,2024-01-02,2\n,2024-01-03,3\n..,2024-01-03,4\n"
    )
    store = ws.get_default_datastore()
    dataset = Dataset.Tabular.from_delimited_files(
        path=(store, "odd"), set_column_types={"day": DataType.to_datetime("%Y-%m-%d")}
    )
    partitioned = dataset.partition_by(
        partition_keys=["team", "day"], target=(store, "odd_parts"), show_progress=False
    )
    back = partitioned.to_pandas_dataframe()
    records = {
        (r.team if isinstance(r.team, str) else None, str(r.day.date()), r.n)
        for r in back.itertuples()
    }
    assert records == {
        ("red/blue", "2024-01-02", 1),
        ("50%", "2024-01-02", 2),
        (None, "2024-01-03", 3),
        ("..", "2024-01-03", 4),
    }


def test_partition_keys_of_an_unpartitioned_dataset_are_refused(ws: Workspace):
    dataset = Dataset.Tabular.from_delimited_files(path=(ws.get_default_datastore(), "sales"))
    config = ParallelRunConfig(None, "total.py", 5, "append_row", "local", 1, partition_keys=["x"])
    with pytest.raises(SdkError, match="not partition keys of the input") as caught:
        ParallelRunStep(name="s", parallel_run_config=config, inputs=[dataset])
    assert "partition_by" in (caught.value.hint or "")


# ---- a PipelineParameter as a ParallelRunStep setting -------------------------------------------

COUNT_FILES = """
    import os

    def run(mini_batch):
        return [f"{os.path.basename(f)} {len(mini_batch)}" for f in mini_batch]
"""


def batch_size_pipeline(ws: Workspace, project: Project) -> tuple[Pipeline, PipelineData]:
    images = project.datastore / "images"
    images.mkdir()
    for i in range(7):
        (images / f"{i}.png").write_bytes(b"x" * i)
    code = entry_scripts(project.root, **{"count.py": COUNT_FILES})
    store = ws.get_default_datastore()
    images_ds = Dataset.File.from_files(path=(store, "images/"))
    output = PipelineData(name="inferences", datastore=store)
    config = ParallelRunConfig(
        source_directory=str(code),
        entry_script="count.py",
        mini_batch_size=PipelineParameter(name="batch_size_param", default_value="5"),
        error_threshold=10,
        output_action="append_row",
        append_row_file_name="counts.txt",
        environment=None,
        compute_target="local",
        process_count_per_node=PipelineParameter(name="process_count_param", default_value=2),
        node_count=2,
    )
    step = ParallelRunStep(
        name="count-files",
        parallel_run_config=config,
        inputs=[images_ds.as_named_input("images")],
        output=output,
        allow_reuse=False,
    )
    return Pipeline(workspace=ws, steps=[step]), output


def test_a_pipeline_parameter_setting_takes_its_default_and_a_submitted_value(
    ws: Workspace, project: Project
):
    pipeline, output = batch_size_pipeline(ws, project)
    experiment = Experiment(ws, "digit_identification")
    first = experiment.submit(pipeline)
    assert first.wait_for_completion(show_output=False, timeout_seconds=120) == "Finished"
    sizes = [row.split()[1] for row in result_rows(first, "count-files", output, "counts.txt")]
    assert sizes == ["5"] * 5 + ["2"] * 2

    second = experiment.submit(
        pipeline, pipeline_parameters={"batch_size_param": "1", "process_count_param": 1}
    )
    assert second.wait_for_completion(show_output=False, timeout_seconds=120) == "Finished"
    sizes = [row.split()[1] for row in result_rows(second, "count-files", output, "counts.txt")]
    assert sizes == ["1"] * 7
    assert step_metrics(second, "count-files")["mini_batches_total"] == 7
    log = second.find_step_run("count-files")[0].get_job_log()
    assert "1 worker slots" in log


def test_a_setting_value_that_is_not_a_number_fails_the_step_with_the_reason(
    ws: Workspace, project: Project
):
    pipeline, _ = batch_size_pipeline(ws, project)
    run = Experiment(ws, "digit_identification").submit(
        pipeline, pipeline_parameters={"batch_size_param": "five"}
    )
    assert run.wait_for_completion(show_output=False, raise_on_error=False) == "Failed"
    log = run.find_step_run("count-files")[0].get_job_log()
    assert "mini_batch_size 'five'" in log


# ---- through a daemon ---------------------------------------------------------------------------


def test_a_tabular_step_runs_through_a_daemon(project: Project, daemons):
    daemon = daemons(project).start()
    (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
    created = project.cli("token", "create", "notebook")
    assert created.returncode == 0, created.stderr
    ws = Workspace(url=listening["url"], token=created.stdout.strip().splitlines()[-1])
    code = entry_scripts(project.root, **{"score.py": SCORE_ROWS})
    store = ws.get_default_datastore()
    dataset = Dataset.Tabular.from_delimited_files(path=(store, "sales/*.csv"))
    # The files are on the daemon's machine: downloaded through it, then read here.
    pd.testing.assert_frame_equal(dataset.to_pandas_dataframe(), all_sales(project))
    partitioned = dataset.partition_by(["store"], target=(store, "by-store"), show_progress=False)
    uploaded = sorted((project.datastore / "by-store").glob("*/*/*.csv"))
    assert len(uploaded) == len(STORES)
    assert sorted(partitioned.to_pandas_dataframe()["income"]) == sorted(
        all_sales(project)["income"]
    )
    output = PipelineData(name="inferences", datastore=store)
    config = ParallelRunConfig(
        source_directory=str(code),
        entry_script="score.py",
        mini_batch_size=PipelineParameter(name="batch_size", default_value="1MB"),
        error_threshold=5,
        output_action="append_row",
        append_row_file_name="scores.txt",
        environment=None,
        compute_target="local",
        node_count=1,
    )
    step = ParallelRunStep(
        name="score-rows",
        inputs=[dataset.as_named_input("sales")],
        output=output,
        parallel_run_config=config,
    )
    run = Experiment(ws, "tabular").submit(
        Pipeline(workspace=ws, steps=[step]), pipeline_parameters={"batch_size": "100"}
    )
    assert run.wait_for_completion(show_output=False, timeout_seconds=120) == "Finished"
    step_run = run.find_step_run("score-rows")[0]
    folder = project.datastore / step_run.get_output_data("inferences").path_on_datastore
    sales = all_sales(project)
    expected = [
        f"{w} {s} {b} {i * 2}"
        for w, s, b, i in sales[["week", "store", "brand", "income"]].itertuples(index=False)
    ]
    assert (folder / "scores.txt").read_text().splitlines() == expected
    # 100 bytes per mini-batch, as submitted: the default, 1MB, would make one of all.
    assert step_run.get_metrics()["mini_batches_total"] > DAYS
