# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of parallel-run/file-dataset-image-inference-mnist: a ParallelRunStep labels a
# folder of images with a registered model, its output is read back with pandas, and the
# pipeline runs again on a single image with other parameter values.

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
datastore_name = "mnist_datastore"
container_name = "sampledata"

# In place of registering Azure's public sample container: the datastore of local images.
mnist_data = Datastore.get(ws, datastore_name)

# %%
def_data_store = ws.get_default_datastore()

# %%
from scheduler.sdk import Dataset

mnist_ds_name = "mnist_sample_data"

path_on_datastore = mnist_data.path("mnist")
input_mnist_ds = Dataset.File.from_files(path=path_on_datastore, validate=False)

# %%
# The input as a parameter, so that a later submit can name other images.
from scheduler.sdk import DatasetConsumptionConfig
from scheduler.sdk import PipelineParameter

pipeline_param = PipelineParameter(name="mnist_param", default_value=input_mnist_ds)
input_mnist_ds_consumption = DatasetConsumptionConfig(
    "minist_param_config", pipeline_param
).as_mount()

# %%
from scheduler.sdk import Pipeline, PipelineData

output_dir = PipelineData(name="inferences", datastore=def_data_store)

# %%
# In place of the download: the model archive kept next to the notebook.
import tarfile

model_dir = "models"
if not os.path.isdir(model_dir):
    os.mkdir(model_dir)

tar = tarfile.open("model.tar.gz", "r:gz")
tar.extractall(model_dir)

os.listdir(model_dir)

# %%
from scheduler.sdk import Model

model = Model.register(
    model_path="models/",
    model_name="mnist-prs",
    tags={"pretrained": "mnist"},
    description="Mnist trained tensorflow model",
    workspace=ws,
)

# %%
scripts_folder = "Code"
script_file = "digit_identification.py"

with open(os.path.join(scripts_folder, script_file)) as inference_file:
    print(inference_file.read())

# %%
from scheduler.sdk import Environment
from scheduler.sdk import CondaDependencies, DEFAULT_CPU_IMAGE

batch_conda_deps = CondaDependencies.create(
    python_version="3.8",
    conda_packages=["pip==20.2.4"],
    pip_packages=[
        "tensorflow==2.13.0",
        "pillow",
        "protobuf==4.23.3",
        "azureml-core",
        "azureml-dataset-runtime[fuse]",
    ],
)
batch_env = Environment(name="batch_environment")
batch_env.python.conda_dependencies = batch_conda_deps
batch_env.docker.base_image = DEFAULT_CPU_IMAGE

# %%
from scheduler.sdk import ParallelRunStep, ParallelRunConfig

parallel_run_config = ParallelRunConfig(
    source_directory=scripts_folder,
    entry_script=script_file,
    mini_batch_size=PipelineParameter(name="batch_size_param", default_value="5"),
    error_threshold=10,
    output_action="append_row",
    append_row_file_name="mnist_outputs.txt",
    environment=batch_env,
    compute_target=compute_target,
    process_count_per_node=PipelineParameter(name="process_count_param", default_value=2),
    node_count=2,
)

# %%
parallelrun_step = ParallelRunStep(
    name="predict-digits-mnist",
    parallel_run_config=parallel_run_config,
    inputs=[input_mnist_ds_consumption],
    output=output_dir,
    allow_reuse=False,
)

# %%
from scheduler.sdk import Experiment

pipeline = Pipeline(workspace=ws, steps=[parallelrun_step])
experiment = Experiment(ws, "digit_identification")
pipeline_run = experiment.submit(pipeline)

# %%
pipeline_run

# %%
pipeline_run.wait_for_completion(show_output=True)

# %%
import pandas as pd
import tempfile

batch_run = pipeline_run.find_step_run(parallelrun_step.name)[0]
batch_output = batch_run.get_output_data(output_dir.name)

target_dir = tempfile.mkdtemp()
batch_output.download(local_path=target_dir)
result_file = os.path.join(
    target_dir, batch_output.path_on_datastore, parallel_run_config.append_row_file_name
)

df = pd.read_csv(result_file, delimiter=":", header=None)
df.columns = ["Filename", "Prediction"]
print("Prediction has ", df.shape[0], " rows")
df.head(10)

# %%
# Again, on one image only, one per mini-batch and one process.
path_on_datastore = mnist_data.path("mnist/0.png")
single_image_ds = Dataset.File.from_files(path=path_on_datastore, validate=False)

# %%
pipeline_run_2 = experiment.submit(
    pipeline,
    pipeline_parameters={
        "mnist_param": single_image_ds,
        "batch_size_param": "1",
        "process_count_param": 1,
    },
)

# %%
pipeline_run_2

# %%
pipeline_run_2.wait_for_completion(show_output=True)
