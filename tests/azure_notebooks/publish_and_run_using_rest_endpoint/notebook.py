# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-publish-and-run-using-rest-endpoint: a three-step pipeline with a
# parameter is published (from the pipeline, and from a run just submitted), fetched back by
# id, and run over its REST endpoint with another value of the parameter.

# %%
import scheduler.sdk
from scheduler.sdk import Workspace, Datastore, Experiment, Dataset
from scheduler.sdk import OutputFileDatasetConfig
from scheduler.sdk import AmlCompute
from scheduler.sdk import ComputeTarget

print("SDK version:", scheduler.sdk.VERSION)

from scheduler.sdk import Pipeline
from scheduler.sdk import PythonScriptStep
from scheduler.sdk import PipelineParameter

print("Pipeline SDK-specific imports completed")

ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")

def_blob_store = Datastore(ws, "workspaceblobstore")
print("Blobstore's name: {}".format(def_blob_store.name))

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

# %%
# In place of the public URL: the same CSV, on the blob store.
data_path = (def_blob_store, "titanic/Titanic.csv")

# %%
blob_input_data = Dataset.File.from_files(data_path).as_named_input("test_data")
print("Dataset created")

# %%
processed_data1 = OutputFileDatasetConfig(name="processed_data1")
print("Output dataset object created")

# %%
source_directory = "publish_run_train"

trainStep = PythonScriptStep(
    script_name="train.py",
    arguments=["--input_data", blob_input_data.as_mount(), "--output_train", processed_data1],
    compute_target=aml_compute,
    source_directory=source_directory,
)
print("trainStep created")

# %%
processed_data2 = OutputFileDatasetConfig(name="processed_data2")
source_directory = "publish_run_extract"

extractStep = PythonScriptStep(
    script_name="extract.py",
    arguments=["--input_extract", processed_data1.as_input(), "--output_extract", processed_data2],
    compute_target=aml_compute,
    source_directory=source_directory,
)
print("extractStep created")

# %%
# The parameter the REST call sets later.
pipeline_param = PipelineParameter(name="pipeline_arg", default_value=10)
print("pipeline parameter created")

# %%
processed_data3 = OutputFileDatasetConfig(name="processed_data3")

# Registered as a dataset once the step has written it.
processed_data3 = processed_data3.register_on_complete("compare_result")

source_directory = "publish_run_compare"

compareStep = PythonScriptStep(
    script_name="compare.py",
    arguments=[
        "--compare_data1",
        processed_data1.as_input(),
        "--compare_data2",
        processed_data2.as_input(),
        "--output_compare",
        processed_data3,
        "--pipeline_param",
        pipeline_param,
    ],
    compute_target=aml_compute,
    source_directory=source_directory,
)
print("compareStep created")

# %%
pipeline1 = Pipeline(workspace=ws, steps=[compareStep])
print("Pipeline is built")

# %%
published_pipeline1 = pipeline1.publish(
    name="My_New_Pipeline",
    description="My Published Pipeline Description",
    continue_on_step_failure=True,
)
published_pipeline1

# %%
# Published again, this time from a run that was only just submitted.
pipeline_run1 = Experiment(ws, "Pipeline_experiment_sample").submit(pipeline1)
published_pipeline2 = pipeline_run1.publish_pipeline(
    name="My_New_Pipeline2",
    description="My Published Pipeline Description",
    version="0.1",
    continue_on_step_failure=True,
)
published_pipeline2

# %%
from scheduler.sdk import PublishedPipeline

pipeline_id = published_pipeline1.id
published_pipeline = PublishedPipeline.get(ws, pipeline_id)
published_pipeline

# %%
from scheduler.sdk import InteractiveLoginAuthentication
import requests

auth = InteractiveLoginAuthentication()
aad_token = auth.get_authentication_header()

rest_endpoint1 = published_pipeline.endpoint

print("You can perform HTTP POST on URL {} to trigger this pipeline".format(rest_endpoint1))

response = requests.post(
    rest_endpoint1,
    headers=aad_token,
    json={
        "ExperimentName": "My_Pipeline1",
        "RunSource": "SDK",
        "ParameterAssignments": {"pipeline_arg": 45},
    },
)

# %%
try:
    response.raise_for_status()
except Exception as ex:
    raise Exception(
        "Received bad response from the endpoint: {}\n"
        "Response Code: {}\n"
        "Headers: {}\n"
        "Content: {}".format(
            rest_endpoint1, response.status_code, response.headers, response.content
        )
    ) from ex

run_id = response.json().get("Id")
print("Submitted pipeline run: ", run_id)
