# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of parallel-run/tabular-dataset-inference-iris: a ParallelRunStep scores the rows of
# a tabular dataset (CSV files on a datastore) with a registered model, in mini-batches of about
# 1 KB, and the appended rows are read back with pandas.

# %%
import scheduler.sdk

print("SDK version:", scheduler.sdk.VERSION)

# %%
from scheduler.sdk import Workspace

ws = Workspace.from_config()
print(
    "Workspace name: " + ws.name,
    "Azure region: " + ws.location,
    "Subscription id: " + ws.subscription_id,
    "Resource group: " + ws.resource_group,
    sep="\n",
)

# %%
import os
from scheduler.sdk import AmlCompute, ComputeTarget

compute_name = os.environ.get("AML_COMPUTE_CLUSTER_NAME", "cpu-cluster")
compute_min_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MIN_NODES", 0)
compute_max_nodes = os.environ.get("AML_COMPUTE_CLUSTER_MAX_NODES", 4)

vm_size = os.environ.get("AML_COMPUTE_CLUSTER_SKU", "STANDARD_D2_V2")

if compute_name in ws.compute_targets:
    compute_target = ws.compute_targets[compute_name]
    if compute_target and type(compute_target) is AmlCompute:
        print("found compute target. just use it. " + compute_name)
else:
    print("creating a new compute target...")
    provisioning_config = AmlCompute.provisioning_configuration(
        vm_size=vm_size, min_nodes=compute_min_nodes, max_nodes=compute_max_nodes
    )
    compute_target = ComputeTarget.create(ws, compute_name, provisioning_config)
    compute_target.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)
    print(compute_target.get_status().serialize())

# %%
from scheduler.sdk import Datastore

account_name = "pipelinedata"
datastore_name = "iris_datastore_data"
container_name = "sampledata"

# In place of registering Azure's public sample container: the datastore of local CSV files.
iris_data = Datastore.get(ws, datastore_name)

# %%
from scheduler.sdk import Dataset

iris_ds_name = "iris_data"

path_on_datastore = iris_data.path("iris/")
input_iris_ds = Dataset.Tabular.from_delimited_files(path=path_on_datastore, validate=False)
named_iris_ds = input_iris_ds.as_named_input(iris_ds_name)

# %%
from scheduler.sdk import PipelineData

datastore = ws.get_default_datastore()
output_folder = PipelineData(name="inferences", datastore=datastore)

# %%
model_container_name = "iris-model"
model_datastore_name = "iris_model_datastore"

# In place of registering Azure's public model container: the datastore that holds the model.
model_datastore = Datastore.get(ws, model_datastore_name)

# %%
from scheduler.sdk import Model

model_datastore.download("iris_model.pkl")

model = Model.register(
    model_path="iris_model.pkl/iris_model.pkl",
    model_name="iris-prs",
    tags={"pretrained": "iris"},
    workspace=ws,
)

# %%
scripts_folder = "Code"
script_file = "iris_score.py"

with open(os.path.join(scripts_folder, script_file)) as inference_file:
    print(inference_file.read())

# %%
from scheduler.sdk import Environment
from scheduler.sdk import CondaDependencies

predict_conda_deps = CondaDependencies.create(
    python_version="3.8",
    conda_packages=["pip==20.2.4"],
    pin_sdk_version=False,
    pip_packages=[
        "numpy==1.19.5",
        "pandas==1.4.4",
        "scikit-learn==0.22.2",
        "azureml-core==1.54.0",
        "azureml-dataset-runtime[fuse]==1.54.0",
    ],
)

predict_env = Environment(name="predict_environment")
predict_env.python.conda_dependencies = predict_conda_deps
predict_env.spark.precache_packages = False

# %%
from scheduler.sdk import ParallelRunStep, ParallelRunConfig

parallel_run_config = ParallelRunConfig(
    source_directory=scripts_folder,
    entry_script=script_file,
    mini_batch_size="1KB",
    error_threshold=5,
    output_action="append_row",
    append_row_file_name="iris_outputs.txt",
    environment=predict_env,
    compute_target=compute_target,
    node_count=2,
    run_invocation_timeout=600,
)

# %%
distributed_csv_iris_step = ParallelRunStep(
    name="example-iris",
    inputs=[named_iris_ds],
    output=output_folder,
    parallel_run_config=parallel_run_config,
    arguments=["--model_name", "iris-prs"],
    allow_reuse=False,
)

# %%
from scheduler.sdk import Experiment
from scheduler.sdk import Pipeline

pipeline = Pipeline(workspace=ws, steps=[distributed_csv_iris_step])

pipeline_run = Experiment(ws, "iris-prs").submit(pipeline)

# %%
pipeline_run

# %%
pipeline_run.wait_for_completion(show_output=True)

# %%
import pandas as pd
import tempfile

prediction_run = pipeline_run.find_step_run(distributed_csv_iris_step.name)[0]
prediction_output = prediction_run.get_output_data(output_folder.name)

target_dir = tempfile.mkdtemp()
prediction_output.download(local_path=target_dir)
result_file = os.path.join(
    target_dir, prediction_output.path_on_datastore, parallel_run_config.append_row_file_name
)

df = pd.read_csv(result_file, delimiter=" ", header=None)
df.columns = ["sepal.length", "sepal.width", "petal.length", "petal.width", "variety"]
print("Prediction has ", df.shape[0], " rows")

random_subset = df.sample(n=20)
random_subset.head(20)
