# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-with-data-dependency-steps: three steps joined by PipelineData
# (a DataReference in, a DataPath parameter beside), the outputs found and downloaded.

# %%
import scheduler.sdk
from scheduler.sdk import Workspace, Experiment, Datastore
from scheduler.sdk import AmlCompute
from scheduler.sdk import ComputeTarget
from scheduler.sdk import RunDetails

print("SDK version:", scheduler.sdk.VERSION)

from scheduler.sdk import DataReference
from scheduler.sdk import Pipeline, PipelineData
from scheduler.sdk import PythonScriptStep

print("Pipeline SDK-specific imports completed")

# %%
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")

def_blob_store = Datastore(ws, "workspaceblobstore")
print("Blobstore's name: {}".format(def_blob_store.name))

# %%
# One folder per step, so each step's snapshot holds only its own script.
source_directory = "data_dependency_run_train"

print("Sample scripts will be created in {} directory.".format(source_directory))

# %%
cts = ws.compute_targets
for ct in cts:
    print(ct)

# %%
from scheduler.sdk import ComputeTargetException

aml_compute_target = "cpu-cluster"
try:
    aml_compute = AmlCompute(ws, aml_compute_target)
    print("found existing compute target.")
except ComputeTargetException:
    print("creating new compute target")

    provisioning_config = AmlCompute.provisioning_configuration(
        vm_size="STANDARD_D2_V2", min_nodes=1, max_nodes=4
    )
    aml_compute = ComputeTarget.create(ws, aml_compute_target, provisioning_config)
    aml_compute.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

print("Aml Compute attached")

# %%
# The raw data: a file on the blob store.
blob_input_data = DataReference(
    datastore=def_blob_store,
    data_reference_name="test_data",
    path_on_datastore="titanic/Titanic.csv",
)
print("DataReference object created")

# %%
# What the first step writes and the second reads.
processed_data1 = PipelineData("processed_data1", datastore=def_blob_store, is_directory=True)
print("PipelineData object created")

# %%
from scheduler.sdk import RunConfiguration
from scheduler.sdk import CondaDependencies
from scheduler.sdk import DEFAULT_CPU_IMAGE

run_config = RunConfiguration()
run_config.environment.docker.enabled = True
run_config.environment.docker.base_image = DEFAULT_CPU_IMAGE
run_config.environment.python.user_managed_dependencies = False
run_config.environment.python.conda_dependencies = CondaDependencies.create(
    conda_packages=["scikit-learn"]
)

# %%
trainStep = PythonScriptStep(
    script_name="train.py",
    arguments=["--input_data", blob_input_data, "--output_train", processed_data1],
    inputs=[blob_input_data],
    outputs=[processed_data1],
    compute_target=aml_compute,
    source_directory=source_directory,
    runconfig=run_config,
)
print("trainStep created")

# %%
processed_data2 = PipelineData("processed_data2", datastore=def_blob_store, is_directory=True)
source_directory = "data_dependency_run_extract"

extractStep = PythonScriptStep(
    script_name="extract.py",
    arguments=["--input_extract", processed_data1, "--output_extract", processed_data2],
    inputs=[processed_data1],
    outputs=[processed_data2],
    compute_target=aml_compute,
    source_directory=source_directory,
)
print("extractStep created")

# %%
# The same raw file again, as a DataPath parameter that a later submit can point elsewhere.
from scheduler.sdk import PipelineParameter
from scheduler.sdk import DataPath, DataPathComputeBinding

datapath = DataPath(datastore=def_blob_store, path_on_datastore="titanic/Titanic.csv")
datapath_param = PipelineParameter(name="compare_data", default_value=datapath)
data_parameter1 = (datapath_param, DataPathComputeBinding(mode="mount"))

# %%
processed_data3 = PipelineData("processed_data3", datastore=def_blob_store, is_directory=True)
source_directory = "data_dependency_run_compare"

compareStep = PythonScriptStep(
    script_name="compare.py",
    arguments=[
        "--compare_data1",
        data_parameter1,
        "--compare_data2",
        processed_data2,
        "--output_compare",
        processed_data3,
    ],
    inputs=[data_parameter1, processed_data2],
    outputs=[processed_data3],
    compute_target=aml_compute,
    source_directory=source_directory,
)
print("compareStep created")

# %%
# Only the last step is given: the others come in through the data it reads.
pipeline1 = Pipeline(workspace=ws, steps=[compareStep])
print("Pipeline is built")

# %%
pipeline_run1 = Experiment(ws, "Data_dependency_sample").submit(pipeline1)
print("Pipeline is submitted for execution")

# %%
RunDetails(pipeline_run1).show()

# %%
pipeline_run1.wait_for_completion(show_output=True)

# %%
for step in pipeline_run1.get_steps():
    print("Outputs of step " + step.name)

    output_dict = step.get_outputs()

    for name, output in output_dict.items():
        output_reference = output.get_port_data_reference()
        print("\tname: " + name)
        print("\tdatastore: " + output_reference.datastore_name)
        print("\tpath on datastore: " + output_reference.path_on_datastore)

# %%
train_step = pipeline_run1.find_step_run("train.py")

if train_step:
    train_step_obj = train_step[0]
    train_step_obj.get_output_data("processed_data1").download("./outputs")
