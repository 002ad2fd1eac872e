# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-how-to-use-modulestep: a Module with two versions of one script
# (a first step with no inputs, a middle one with two), wired into three ModuleSteps.

# %%
from scheduler.sdk import Workspace, Experiment, Datastore, RunConfiguration
from scheduler.sdk import AmlCompute
from scheduler.sdk import ComputeTarget
from scheduler.sdk import Pipeline, PipelineData, PipelineParameter
from scheduler.sdk import InputPortDef, OutputPortDef
from scheduler.sdk import Module
from scheduler.sdk import ModuleStep

workspace = Workspace.from_config()
print(
    workspace.name,
    workspace.resource_group,
    workspace.location,
    workspace.subscription_id,
    sep="\n",
)

aml_compute_target = "cpu-cluster"
try:
    aml_compute = AmlCompute(workspace, aml_compute_target)
    print("Found existing compute target: {}".format(aml_compute_target))
except:
    print("Creating new compute target: {}".format(aml_compute_target))

    provisioning_config = AmlCompute.provisioning_configuration(
        vm_size="STANDARD_D2_V2", min_nodes=1, max_nodes=4
    )
    aml_compute = ComputeTarget.create(workspace, aml_compute_target, provisioning_config)
    aml_compute.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

datastore = Datastore(workspace=workspace, name="workspaceblobstore")

# %%
module = Module.create(
    workspace, name="AddAndMultiply", description="A module that adds and multiplies"
)

# %%
# The first version starts a pipeline: outputs only.
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

# %%
# The second version reads two inputs; it becomes the module's default.
in1_mid = InputPortDef(
    name="in1",
    default_datastore_mode="mount",
    default_data_reference_name=datastore.name,
    label="First input number",
)
in2_mid = InputPortDef(
    name="in2",
    default_datastore_mode="mount",
    default_data_reference_name=datastore.name,
    label="Second input number",
)
out_sum_mid = OutputPortDef(
    name="out_sum",
    default_datastore_name=datastore.name,
    default_datastore_mode="mount",
    label="Sum of two numbers",
)
out_prod_mid = OutputPortDef(
    name="out_prod",
    default_datastore_name=datastore.name,
    default_datastore_mode="mount",
    label="Product of two numbers",
)
module.publish_python_script(
    "calculate.py",
    "middle",
    inputs=[in1_mid, in2_mid],
    outputs=[out_sum_mid, out_prod_mid],
    version="2",
    is_default=True,
    source_directory="./calc",
)

# %%
first_sum = PipelineData("sum_out", datastore=datastore, output_mode="mount", is_directory=False)
first_prod = PipelineData("prod_out", datastore=datastore, output_mode="mount", is_directory=False)
step_output_wiring = {"out_sum": first_sum, "out_prod": first_prod}

# %%
# The first step names its ModuleVersion; one number is a parameter, the other fixed.
first_num_param = PipelineParameter(name="initialNum", default_value=17)
first_step = ModuleStep(
    module_version=entry_version,
    inputs_map={},
    outputs_map=step_output_wiring,
    runconfig=RunConfiguration(),
    compute_target=aml_compute,
    arguments=[
        "--output_sum",
        first_sum,
        "--output_product",
        first_prod,
        "--arg_num1",
        first_num_param,
        "--arg_num2",
        "2",
    ],
)

# %%
middle_step_input_wiring = {"in1": first_sum, "in2": first_prod}
middle_sum = PipelineData(
    "middle_sum", datastore=datastore, output_mode="mount", is_directory=False
)
middle_prod = PipelineData(
    "middle_prod", datastore=datastore, output_mode="mount", is_directory=False
)
middle_step_output_wiring = {"out_sum": middle_sum, "out_prod": middle_prod}

# %%
# The middle step names only the module: its default version is used.
middle_step = ModuleStep(
    module=module,
    inputs_map=middle_step_input_wiring,
    outputs_map=middle_step_output_wiring,
    runconfig=RunConfiguration(),
    compute_target=aml_compute,
    arguments=[
        "--file_num1",
        first_sum,
        "--file_num2",
        first_prod,
        "--output_sum",
        middle_sum,
        "--output_product",
        middle_prod,
    ],
)

# %%
last_step_input_wiring = {"in1": middle_sum, "in2": middle_prod}
end_sum = PipelineData("end_sum", datastore=datastore, output_mode="mount", is_directory=False)
end_prod = PipelineData("end_prod", datastore=datastore, output_mode="mount", is_directory=False)
last_step_output_wiring = {"out_sum": end_sum, "out_prod": end_prod}

# %%
# The last step names the module and a version.
end_step = ModuleStep(
    module=module,
    version="2",
    inputs_map=last_step_input_wiring,
    outputs_map=last_step_output_wiring,
    runconfig=RunConfiguration(),
    compute_target=aml_compute,
    arguments=[
        "--file_num1",
        middle_sum,
        "--file_num2",
        middle_prod,
        "--output_sum",
        end_sum,
        "--output_product",
        end_prod,
    ],
)

# %%
pipeline = Pipeline(workspace=workspace, steps=[first_step, middle_step, end_step])

# %%
experiment = Experiment(workspace, "testmodulestesp")
experiment.submit(pipeline)
