"""Azure ML's ``Module``, ``ModuleVersion`` and ``ModuleStep`` as the ModuleStep notebook uses
them (a module of two versions, three steps wired by port, one-file PipelineData between
them), and the module registry's rules: versions that never change, Azure's resolution order,
refusals that name the alternative. On an embedded workspace (a real SQLite store in tmp_path,
runs in real child processes) and through a real daemon's REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.core.errors import NotFound
from scheduler.sdk import (
    Datastore,
    Experiment,
    InputPortDef,
    Module,
    ModuleStep,
    ModuleVersion,
    OutputPortDef,
    Pipeline,
    PipelineData,
    PipelineParameter,
    RunConfiguration,
    Workspace,
)
from scheduler.sdk._warn import SdkError
from tests.conftest import wait_until
from tests.daemon_harness import DaemonProcess
from tests.projects import Project, make_project

# Adds and multiplies two numbers, each given as a number or as a file holding one, and writes
# each result as a file at the path it is given (one-file outputs, as on Azure).
CALCULATE = """\
import argparse, os

parser = argparse.ArgumentParser()
parser.add_argument("--arg_num1", type=int)
parser.add_argument("--arg_num2", type=int)
for option in ("--file_num1", "--file_num2", "--output_sum", "--output_product"):
    parser.add_argument(option)
args = parser.parse_args()


def operand(number, file):
    if number is not None:
        return number
    if not file:
        return 0
    with open(file, encoding="utf-8") as handle:
        return int(handle.read())


first = operand(args.arg_num1, args.file_num1)
second = operand(args.arg_num2, args.file_num2)
print("AML_PARAMETER_initialNum=" + str(os.environ.get("AML_PARAMETER_initialNum")))
for path, value in ((args.output_sum, first + second), (args.output_product, first * second)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(str(value))
"""


def _project(root: Path) -> Project:
    project = make_project(
        root, datastores={"default": {"path": None}, "workspaceblobstore": {"path": "../blob"}}
    )
    (project.root / "calc").mkdir()
    (project.root / "calc" / "calculate.py").write_text(CALCULATE)
    return project


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Workspace]:
    project = _project(tmp_path_factory.mktemp("modules-embedded"))
    return project, Workspace(config=project.config_path)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Workspace]]:
    project = _project(tmp_path_factory.mktemp("modules-remote"))
    daemon = DaemonProcess(project).start()
    try:
        (listening,) = wait_until(lambda: daemon.events("api_listening"), timeout=15)
        created = project.cli("token", "create", "modules")
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        yield project, Workspace(url=listening["url"], token=token)
    finally:
        daemon.close()


@pytest.fixture
def here(embedded, monkeypatch: pytest.MonkeyPatch) -> tuple[Project, Workspace]:
    """The embedded workspace, from its project's folder (``source_directory="./calc"``)."""
    monkeypatch.chdir(embedded[0].root)
    return embedded


@pytest.fixture(params=["embedded", "remote"])
def workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Project, Workspace]:
    """Each test's own modules: through a daemon they live in this machine's data folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    project, ws = request.getfixturevalue(request.param)
    monkeypatch.chdir(project.root)  # the notebook's source_directory="./calc"
    return project, ws


def _name(base: str, request: pytest.FixtureRequest) -> str:
    """A module name of this test's own: the embedded workspace is shared by the module."""
    return f"{base}-{request.node.name}"


def _numbers(run, step_name: str) -> dict[str, int]:
    """A step's one-file outputs, read where the step wrote them: name -> number."""
    (step,) = run.find_step_run(step_name)
    outputs = step.get_outputs()
    return {name: int((o.folder / name).read_text()) for name, o in outputs.items()}


def _calculator(workspace: Workspace, name: str) -> tuple[Module, ModuleVersion, Datastore]:
    """The notebook's module: version 1 (no inputs, a parameter), version 2 (the default)."""
    datastore = Datastore(workspace=workspace, name="workspaceblobstore")
    module = Module.create(workspace, name=name, description="A module that adds and multiplies")
    out_sum = OutputPortDef(
        name="out_sum",
        default_datastore_name=datastore.name,
        default_datastore_mode="mount",
        label="Sum of two numbers",
    )
    out_prod = OutputPortDef(
        name="out_prod",
        default_datastore_name=datastore.name,
        default_datastore_mode="mount",
        label="Product of two numbers",
    )
    entry_version = module.publish_python_script(
        "calculate.py",
        "initial",
        inputs=[],
        outputs=[out_sum, out_prod],
        params={"initialNum": 12},
        version="1",
        source_directory="./calc",
    )
    in1 = InputPortDef(
        name="in1",
        default_datastore_mode="mount",
        default_data_reference_name=datastore.name,
        label="First input number",
    )
    in2 = InputPortDef(
        name="in2",
        default_datastore_mode="mount",
        default_data_reference_name=datastore.name,
        label="Second input number",
    )
    module.publish_python_script(
        "calculate.py",
        "middle",
        inputs=[in1, in2],
        outputs=[out_sum, out_prod],
        version="2",
        is_default=True,
        source_directory="./calc",
    )
    return module, entry_version, datastore


def _file_data(name: str, datastore: Datastore) -> PipelineData:
    return PipelineData(name, datastore=datastore, output_mode="mount", is_directory=False)


@pytest.mark.filterwarnings("ignore::scheduler.sdk.IgnoredArgumentWarning")  # runconfig
def test_the_modulestep_notebook_flow(workspace, request):
    _, ws = workspace
    module, entry_version, datastore = _calculator(ws, _name("AddAndMultiply", request))
    first_sum, first_prod = _file_data("sum_out", datastore), _file_data("prod_out", datastore)
    first_num_param = PipelineParameter(name="initialNum", default_value=17)
    first_step = ModuleStep(
        module_version=entry_version,
        inputs_map={},
        outputs_map={"out_sum": first_sum, "out_prod": first_prod},
        runconfig=RunConfiguration(),
        compute_target="local",
        arguments=[
            "--output_sum", first_sum, "--output_product", first_prod,
            "--arg_num1", first_num_param, "--arg_num2", "2",
        ],
    )  # fmt: skip
    middle_sum, middle_prod = (
        _file_data("middle_sum", datastore),
        _file_data("middle_prod", datastore),
    )
    middle_step = ModuleStep(
        module=module,
        inputs_map={"in1": first_sum, "in2": first_prod},
        outputs_map={"out_sum": middle_sum, "out_prod": middle_prod},
        runconfig=RunConfiguration(),
        compute_target="local",
        arguments=[
            "--file_num1", first_sum, "--file_num2", first_prod,
            "--output_sum", middle_sum, "--output_product", middle_prod,
        ],
    )  # fmt: skip
    end_sum, end_prod = _file_data("end_sum", datastore), _file_data("end_prod", datastore)
    end_step = ModuleStep(
        module=module,
        version="2",
        inputs_map={"in1": middle_sum, "in2": middle_prod},
        outputs_map={"out_sum": end_sum, "out_prod": end_prod},
        runconfig=RunConfiguration(),
        compute_target="local",
        arguments=[
            "--file_num1", middle_sum, "--file_num2", middle_prod,
            "--output_sum", end_sum, "--output_product", end_prod,
        ],
    )  # fmt: skip
    pipeline = Pipeline(workspace=ws, steps=[first_step, middle_step, end_step])

    run = Experiment(ws, "testmodulestesp").submit(pipeline)

    assert run.wait_for_completion(show_output=False, timeout_seconds=90) == "Finished"
    steps = run.get_steps()
    assert [s.name for s in steps] == [module.name] * 3
    assert _numbers(run, steps[0].id.split("/")[1]) == {"sum_out": 19, "prod_out": 34}
    assert _numbers(run, steps[1].id.split("/")[1]) == {"middle_sum": 53, "middle_prod": 646}
    assert _numbers(run, steps[2].id.split("/")[1]) == {"end_sum": 699, "end_prod": 34238}
    assert "AML_PARAMETER_initialNum=17" in steps[0].get_job_log()
    assert middle_step.module_version.version == "2"  # the default, resolved

    other = Experiment(ws, "testmodulestesp").submit(
        pipeline, pipeline_parameters={"initialNum": 5}
    )
    assert other.wait_for_completion(show_output=False, timeout_seconds=90) == "Finished"
    last = other.get_steps()[2].id.split("/")[1]
    assert _numbers(other, last) == {"end_sum": 87, "end_prod": 1190}  # 7, 10 -> 17, 70
    assert "AML_PARAMETER_initialNum=5" in other.get_steps()[0].get_job_log()


def test_a_version_runs_its_source_as_published(workspace, request, tmp_path: Path):
    _, ws = workspace
    source = tmp_path / "source"
    source.mkdir()
    (source / "calculate.py").write_text(CALCULATE)
    module = Module.create(ws, name=_name("Frozen", request), description="d")
    out_sum, out_prod = OutputPortDef(name="out_sum"), OutputPortDef(name="out_prod")
    version = module.publish_python_script(
        "calculate.py",
        "frozen",
        inputs=[],
        outputs=[out_sum, out_prod],
        version="1",
        source_directory=str(source),
    )
    (source / "calculate.py").write_text("raise SystemExit('edited after publishing')\n")
    total = PipelineData("total", is_directory=False)
    product = PipelineData("product", is_directory=False)
    step = ModuleStep(
        module_version=version,
        outputs_map={"out_sum": total, "out_prod": product},
        arguments=[
            "--arg_num1", "3", "--arg_num2", "4",
            "--output_sum", total, "--output_product", product,
        ],
    )  # fmt: skip
    run = Experiment(ws, "frozen").submit(Pipeline(workspace=ws, steps=[step]))
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert _numbers(run, run.get_steps()[0].id.split("/")[1]) == {"total": 7, "product": 12}


def test_version_arguments_are_used_when_the_step_gives_none(workspace, request):
    _, ws = workspace
    module = Module.create(ws, name=_name("WithArguments", request), description="d")
    out_sum, out_prod = OutputPortDef(name="out_sum"), OutputPortDef(name="out_prod")
    first = PipelineParameter("first", default_value=3)
    version = module.publish_python_script(
        "calculate.py",
        "takes its own arguments",
        inputs=[],
        outputs=[out_sum, out_prod],
        version="1",
        source_directory="./calc",
        arguments=[
            "--arg_num1", first, "--arg_num2", "4",
            "--output_sum", out_sum, "--output_product", out_prod,
        ],
    )  # fmt: skip
    total = PipelineData("total", is_directory=False)
    product = PipelineData("product", is_directory=False)
    step = ModuleStep(module_version=version, outputs_map={"out_sum": total, "out_prod": product})
    run = Experiment(ws, "own-arguments").submit(
        Pipeline(workspace=ws, steps=[step]), pipeline_parameters={"first": 5}
    )
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Finished"
    assert _numbers(run, run.get_steps()[0].id.split("/")[1]) == {"total": 9, "product": 20}


def test_a_version_label_never_changes(here, request):
    _, ws = here
    module, entry_version, _ = _calculator(ws, _name("Versions", request))
    again, *_ = _calculator(ws, _name("Versions", request))  # the notebook run again
    assert again.id == module.id
    assert [v.version for v in again.module_version_list()] == ["1", "2"]
    assert again.resolve("1").module_version_id == entry_version.module_version_id

    with pytest.raises(SdkError, match="already has a different version '1'") as refused:
        again.publish_python_script(
            "calculate.py", "other", inputs=[], outputs=[], version="1", source_directory="./calc"
        )
    assert "version='3'" in str(refused.value)
    unlabelled = again.publish_python_script(
        "calculate.py", "next", inputs=[], outputs=[], source_directory="./calc"
    )
    assert unlabelled.version == "3"


def test_resolution_follows_azure_order(here, request):
    _, ws = here
    module = Module.create(ws, name=_name("Resolve", request), description="d")

    def publish(label: str) -> ModuleVersion:
        return module.publish_python_script(
            "calculate.py", label, inputs=[], outputs=[], version=label, source_directory="./calc"
        )

    for label in ("1.9", "1.10", "1"):
        publish(label)
    assert module.resolve().version == "1.10"  # the highest dotted number
    module.resolve("1.10").disable()
    assert module.resolve().version == "1.9"  # disabled versions are passed over
    assert module.resolve("1.10").status == "Disabled"  # unless named
    module.set_default_version("1")
    assert module.resolve().version == "1" and module.get_default().version == "1"
    with pytest.raises(NotFound, match="no version '7'"):
        module.resolve("7")

    named = Module.create(ws, name=_name("Named", request), description="d")
    for label in ("beta", "alpha"):
        named.publish_python_script(
            "calculate.py", label, inputs=[], outputs=[], version=label, source_directory="./calc"
        )
    assert named.resolve().version == "alpha"  # not numbers: the one changed last


def test_modules_are_found_again(workspace, request):
    project, ws = workspace
    module, entry_version, _ = _calculator(ws, _name("Found", request))
    module.set_description("changed")
    fresh = Workspace(config=project.config_path) if ws._config is not None else ws

    found = Module.get(fresh, name=module.name)

    assert (found.id, found.description, found.default_version) == (module.id, "changed", "2")
    assert Module.get(fresh, module_id=module.id).name == module.name
    by_id = ModuleVersion.get(fresh, module_version_id=entry_version.module_version_id)
    assert by_id.version == "1" and by_id.module().id == module.id
    assert [d.version for d in Module.get_versions(fresh, module.name)] == ["1", "2"]
    with pytest.raises(NotFound, match="no module with name 'Nothing'"):
        Module.get(fresh, name="Nothing")


def test_what_needs_azure_is_refused_with_the_alternative(here, request):
    _, ws = here
    module = Module.create(ws, name=_name("Azure", request), description="d")
    with pytest.raises(SdkError, match="Data Lake Analytics") as adla:
        module.publish_adla_script("script.usql", "d", inputs=[], outputs=[])
    assert "type: sql" in str(adla.value)
    with pytest.raises(SdkError, match="Azure Batch") as batch:
        module.publish_azure_batch("d", "batch", inputs=[], outputs=[], executable="run.exe")
    assert "CommandStep" in str(batch.value)
    with pytest.raises(SdkError, match="publish_python_script"):
        module.publish("d", "escloud", inputs=[], outputs=[])


def test_wiring_a_port_the_version_lacks_is_refused(here, request):
    _, ws = here
    module, entry_version, _ = _calculator(ws, _name("Wiring", request))
    with pytest.raises(SdkError, match="no input port 'in1'") as refused:
        ModuleStep(module_version=entry_version, inputs_map={"in1": PipelineData("x")})
    assert "its inputs: none" in str(refused.value)
    with pytest.raises(SdkError, match="no output port 'result'") as refused:
        ModuleStep(module=module, outputs_map={"result": PipelineData("y")})
    assert "out_sum, out_prod" in str(refused.value)
    with pytest.raises(SdkError, match="not both"):
        ModuleStep(module=module, module_version=entry_version)
    with pytest.raises(SdkError, match="script not found"):
        module.publish_python_script("missing.py", "d", inputs=[], outputs=[], version="9")
