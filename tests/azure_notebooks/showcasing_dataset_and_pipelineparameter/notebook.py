# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-showcasing-dataset-and-pipelineparameter: a file dataset and a
# tabular dataset as PipelineParameters, submitted with defaults, with other datasets from the
# SDK, from a published pipeline, and over REST.

# %%
import scheduler.sdk
from scheduler.sdk import Workspace, Experiment, Dataset
from scheduler.sdk import ComputeTarget, AmlCompute
from scheduler.sdk import DatasetConsumptionConfig
from scheduler.sdk import RunDetails

from scheduler.sdk import PipelineParameter
from scheduler.sdk import Pipeline, PipelineRun
from scheduler.sdk import PythonScriptStep

print("SDK version:", scheduler.sdk.VERSION)

# %%
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")

# %%
experiment_name = "showcasing-dataset"
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

# %%
# In place of the public URLs: the same CSV on the default datastore.
file_dataset = Dataset.File.from_files("datastore://default/demo/Titanic.csv")
file_pipeline_param = PipelineParameter(name="file_ds_param", default_value=file_dataset)
file_ds_consumption = DatasetConsumptionConfig("file_dataset", file_pipeline_param).as_mount()

tabular_dataset = Dataset.Tabular.from_delimited_files("datastore://default/demo/Titanic.csv")
tabular_pipeline_param = PipelineParameter(name="tabular_ds_param", default_value=tabular_dataset)
tabular_ds_consumption = DatasetConsumptionConfig("tabular_dataset", tabular_pipeline_param)

# %% [writefile train_with_dataset.py]

# %%
train_step = PythonScriptStep(
    name="train_step",
    script_name="train_with_dataset.py",
    arguments=["--param1", file_ds_consumption, "--param2", tabular_ds_consumption],
    inputs=[file_ds_consumption, tabular_ds_consumption],
    compute_target=compute_target,
    source_directory=source_directory,
)

print("train_step created")

pipeline = Pipeline(workspace=ws, steps=[train_step])
print("pipeline with the train_step created")

# %%
pipeline_run = experiment.submit(pipeline)
print("Pipeline is submitted for execution")

# %%
RunDetails(pipeline_run).show()

# %%
pipeline_run.wait_for_completion()

# %%
# Other datasets for the same pipeline (here: an iris sample, from the datastore).
iris_file_ds = Dataset.File.from_files("datastore://default/demo/iris.csv")

iris_tabular_ds = Dataset.Tabular.from_delimited_files("datastore://default/demo/iris.csv")

# %%
pipeline_run_with_params = experiment.submit(
    pipeline,
    pipeline_parameters={"file_ds_param": iris_file_ds, "tabular_ds_param": iris_tabular_ds},
)

# %%
RunDetails(pipeline_run_with_params).show()

# %%
pipeline_run_with_params.wait_for_completion()

# %%
published_pipeline = pipeline.publish(
    name="Dataset_Pipeline",
    description="Pipeline to test Dataset PipelineParameter",
    continue_on_step_failure=True,
)
published_pipeline

# %%
published_pipeline.submit(
    ws,
    experiment_name="publishedexperiment",
    pipeline_parameters={"file_ds_param": iris_file_ds, "tabular_ds_param": iris_tabular_ds},
)

# %%
from scheduler.sdk import InteractiveLoginAuthentication
import requests

auth = InteractiveLoginAuthentication()
aad_token = auth.get_authentication_header()

rest_endpoint = published_pipeline.endpoint

print("You can perform HTTP POST on URL {} to trigger this pipeline".format(rest_endpoint))

# %%
# Datasets by id in the REST body.
response = requests.post(
    rest_endpoint,
    headers=aad_token,
    json={
        "ExperimentName": "MyRestPipeline",
        "RunSource": "SDK",
        "DataSetDefinitionValueAssignments": {
            "file_ds_param": {"SavedDataSetReference": {"Id": iris_file_ds.id}},
            "tabular_ds_param": {"SavedDataSetReference": {"Id": iris_tabular_ds.id}},
        },
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
