# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-setup-versioned-pipeline-endpoints: a PipelineEndpoint is made
# from a pipeline, found by name and by id, given a second published pipeline, renamed, and run
# by version and by default, over REST and from the SDK.

# %%
from scheduler.sdk import Workspace

ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")

# %%
from scheduler.sdk import AmlCompute, ComputeTarget
from scheduler.sdk import PythonScriptStep
from scheduler.sdk import Pipeline

from scheduler.sdk import ComputeTargetException

aml_compute_target = "cpu-cluster"
try:
    aml_compute = AmlCompute(ws, aml_compute_target)
    print("Found existing compute target: {}".format(aml_compute_target))
except ComputeTargetException:
    print("Creating new compute target: {}".format(aml_compute_target))

    provisioning_config = AmlCompute.provisioning_configuration(
        vm_size="STANDARD_D2_V2", min_nodes=1, max_nodes=4
    )
    aml_compute = ComputeTarget.create(ws, aml_compute_target, provisioning_config)
    aml_compute.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

source_directory = "publish_run_train"
trainStep = PythonScriptStep(
    name="Training_Step",
    script_name="train.py",
    compute_target=aml_compute_target,
    source_directory=source_directory,
)
print("TrainStep created")
pipeline = Pipeline(workspace=ws, steps=[trainStep])
print("Pipeline is built")

# %%
from datetime import datetime

timenow = datetime.now().strftime("%m-%d-%Y-%H-%M")

pipeline_name = timenow + "-Pipeline"
print(pipeline_name)

published_pipeline = pipeline.publish(name=pipeline_name, description=pipeline_name)
print("Newly published pipeline id: {}".format(published_pipeline.id))

# %%
from scheduler.sdk import PipelineEndpoint

pipeline_endpoint = PipelineEndpoint.publish(
    workspace=ws,
    name="PipelineEndpointTest",
    pipeline=pipeline,
    description="Test description Notebook",
)
pipeline_endpoint

# %%
pipeline_endpoint_by_name = PipelineEndpoint.get(workspace=ws, name="PipelineEndpointTest")
pipeline_endpoint_by_name

# %%
pipeline_endpoint_by_name = PipelineEndpoint.get(workspace=ws, name="PipelineEndpointTest")
endpoint_id = pipeline_endpoint_by_name.id

pipeline_endpoint_by_id = PipelineEndpoint.get(workspace=ws, id=endpoint_id)
pipeline_endpoint_by_id

# %%
endpoint_list = PipelineEndpoint.list(workspace=ws, active_only=True)
endpoint_list

# %%
# An endpoint counts its versions from "0".
default_version = pipeline_endpoint_by_name.get_default_version()
default_version

# %%
pipeline_endpoint_by_name.set_default_version("0")

# %%
pipeline = pipeline_endpoint_by_name.get_pipeline("0")
pipeline

# %%
pipeline = pipeline_endpoint_by_name.get_pipeline()
pipeline

# %%
# The pipeline published under its own name joins the endpoint, then becomes its default.
pipeline_endpoint_by_name.add(published_pipeline)

# %%
pipeline_endpoint_by_name.set_default(published_pipeline)

# %%
versions = pipeline_endpoint_by_name.list_versions()

for ve in versions:
    print(ve.version)
    print(ve.pipeline.id)

# %%
pipelines = pipeline_endpoint_by_name.list_pipelines(active_only=True)
pipelines

# %%
pipeline_endpoint_by_name.set_name(name="NewName")

# %%
pipeline_endpoint_by_name = PipelineEndpoint.get(workspace=ws, name="NewName")

rest_endpoint_id = pipeline_endpoint_by_name.endpoint

rest_endpoint_id_without_version_with_id = rest_endpoint_id

# A version's URL: the endpoint's, then "/" and the version.
version = "0"
rest_endpoint_id_with_version = rest_endpoint_id_without_version_with_id + "/" + version
print(rest_endpoint_id_with_version)
pipeline_endpoint_by_name

# %%
# The same endpoint by name, as Azure spells that URL.
rest_endpoint_name = (
    rest_endpoint_id.split("Id", 1)[0] + "Name?name=" + pipeline_endpoint_by_name.name
)

rest_endpoint_name_without_version = rest_endpoint_name

version = "0"
rest_endpoint_name_with_version = rest_endpoint_name_without_version + "&pipelineVersion=" + version
print(rest_endpoint_name_with_version)

# %%
from scheduler.sdk import InteractiveLoginAuthentication
import requests

auth = InteractiveLoginAuthentication()
aad_token = auth.get_authentication_header()

print(
    "You can perform HTTP POST on URL {} to trigger this pipeline".format(
        rest_endpoint_name_with_version
    )
)

response = requests.post(
    rest_endpoint_name_with_version,
    headers=aad_token,
    json={
        "ExperimentName": "default_pipeline",
        "RunSource": "SDK",
        "ParameterAssignments": {"1": "united", "2": "city"},
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
            rest_endpoint_name_with_version,
            response.status_code,
            response.headers,
            response.content,
        )
    )

run_id = response.json().get("Id")
print("Submitted pipeline run: ", run_id)

# %%
run_id = pipeline_endpoint_by_name.submit("NewName", pipeline_version="0")
print(run_id)

run_id = pipeline_endpoint_by_name.submit("NewName")
print(run_id)

# %%
from scheduler.sdk import Experiment

pipeline_run = Experiment(ws, name="submit_endpoint_sample").submit(
    pipeline_endpoint_by_name, tags={"endpoint_tag": "1"}, pipeline_version="0"
)
