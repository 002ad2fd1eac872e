# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-showcasing-datapath-and-pipelineparameter: a string and a DataPath
# as PipelineParameters, submitted with defaults, overridden from the SDK and over REST, and a
# schedule that fires on a datastore folder.

# %%
import scheduler.sdk
from scheduler.sdk import Workspace, Experiment
from scheduler.sdk import ComputeTarget, AmlCompute
from scheduler.sdk import DataPath, DataPathComputeBinding
from scheduler.sdk import RunDetails

from scheduler.sdk import PipelineParameter
from scheduler.sdk import Pipeline, PipelineRun
from scheduler.sdk import PythonScriptStep

print("SDK version:", scheduler.sdk.VERSION)

# %%
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")

# %%
# The experiment that records the runs, and where the step's script lives.
experiment_name = "showcasing-datapath"
source_directory = "."

experiment = Experiment(ws, experiment_name)
experiment

# %%
amlcompute_cluster_name = "cpu-cluster"

found = False
cts = ws.compute_targets
if amlcompute_cluster_name in cts and cts[amlcompute_cluster_name].type == "AmlCompute":
    found = True
    print("Found existing compute target.")
    compute_target = cts[amlcompute_cluster_name]

if not found:
    print("Creating a new compute target...")
    provisioning_config = AmlCompute.provisioning_configuration(
        vm_size="STANDARD_D2_V2", max_nodes=4
    )
    compute_target = ComputeTarget.create(ws, amlcompute_cluster_name, provisioning_config)
    compute_target.wait_for_completion(show_output=True, timeout_in_minutes=10)

# %% [writefile train_with_datapath.py]

# %%
def_blob_store = ws.get_default_datastore()
print("Default datastore's name: {}".format(def_blob_store.name))

data_path = DataPath(datastore=def_blob_store, path_on_datastore="sample_datapath1")
datapath1_pipeline_param = PipelineParameter(name="input_datapath", default_value=data_path)
datapath_input = (datapath1_pipeline_param, DataPathComputeBinding(mode="mount"))

string_pipeline_param = PipelineParameter(name="input_string", default_value="sample_string1")

# %%
# The DataPath tuple goes to both the arguments and the inputs.
train_step = PythonScriptStep(
    name="train_step",
    script_name="train_with_datapath.py",
    arguments=["--arg1", string_pipeline_param, "--arg2", datapath_input],
    inputs=[datapath_input],
    compute_target=compute_target,
    source_directory=source_directory,
)
print("train_step created")

pipeline = Pipeline(workspace=ws, steps=[train_step])
print("pipeline with the train_step created")

# %%
# With no parameters, the defaults are used.
pipeline_run = experiment.submit(pipeline)
print("Pipeline is submitted for execution")

# %%
RunDetails(pipeline_run).show()

# %%
pipeline_run.wait_for_completion()

# %%
# Other values for both parameters, from the SDK.
pipeline_run_with_params = experiment.submit(
    pipeline,
    pipeline_parameters={
        "input_datapath": DataPath(datastore=def_blob_store, path_on_datastore="sample_datapath2"),
        "input_string": "sample_string2",
    },
)

# %%
RunDetails(pipeline_run_with_params).show()

# %%
pipeline_run_with_params.wait_for_completion()

# %%
published_pipeline = pipeline.publish(
    name="DataPath_Pipeline",
    description="Pipeline to test Datapath",
    continue_on_step_failure=True,
)
published_pipeline

# %%
from scheduler.sdk import InteractiveLoginAuthentication
import requests

auth = InteractiveLoginAuthentication()
aad_token = auth.get_authentication_header()

rest_endpoint = published_pipeline.endpoint

print("You can perform HTTP POST on URL {} to trigger this pipeline".format(rest_endpoint))

# %%
# Other values again, this time in the REST body.
response = requests.post(
    rest_endpoint,
    headers=aad_token,
    json={
        "ExperimentName": "MyRestPipeline",
        "RunSource": "SDK",
        "DataPathAssignments": {
            "input_datapath": {
                "DataStoreName": def_blob_store.name,
                "RelativePath": "sample_datapath3",
            }
        },
        "ParameterAssignments": {"input_string": "sample_string3"},
    },
)

# %%
try:
    response.raise_for_status()
except Exception:
    raise Exception(
        "Received bad response from the endpoint: {}\n"
        "Response Code: {}\n"
        "Headers: {}\n"
        "Content: {}".format(
            rest_endpoint, response.status_code, response.headers, response.content
        )
    )

run_id = response.json().get("Id")
print("Submitted pipeline run: ", run_id)

# %%
published_pipeline_run_via_rest = PipelineRun(ws.experiments["MyRestPipeline"], run_id)
RunDetails(published_pipeline_run_via_rest).show()

# %%
published_pipeline_run_via_rest.wait_for_completion()

# %%
# A schedule that runs the pipeline for each file that lands in a datastore folder; the path
# of that file replaces the DataPath parameter named here.
from scheduler.sdk import Schedule

schedule = Schedule.create(
    workspace=ws,
    name="Datastore_trigger_schedule",
    pipeline_id=published_pipeline.id,
    experiment_name="Scheduled_Pipeline",
    datastore=def_blob_store,
    wait_for_provisioning=True,
    description="Datastore trigger schedule demo",
    path_on_datastore="sample_datapath_for_folder",
    data_path_parameter_name="input_datapath",
)

print("Created schedule with id: {}".format(schedule.id))

# %%
schedule.disable()
schedule
