# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-with-commandstep: a CommandStep whose command, folder, compute and
# environment come from a ScriptRunConfig (with an MPI configuration for two nodes).

# %%
import scheduler.sdk

print("Azure ML SDK Version: ", scheduler.sdk.VERSION)

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
from scheduler.sdk import ComputeTarget, AmlCompute
from scheduler.sdk import ComputeTargetException

cluster_name = "gpu-cluster"

try:
    gpu_cluster = ComputeTarget(workspace=ws, name=cluster_name)
    print("Found existing compute target")
except ComputeTargetException:
    print("Creating a new compute target...")
    compute_config = AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=4)

    gpu_cluster = ComputeTarget.create(ws, cluster_name, compute_config)

    gpu_cluster.wait_for_completion(show_output=True, min_node_count=None, timeout_in_minutes=20)

print(gpu_cluster.get_status().serialize())

# %%
from scheduler.sdk import Environment

tf_env = Environment.get(ws, name="AzureML-TensorFlow-2.3-GPU")

# %%
from scheduler.sdk import ScriptRunConfig
from scheduler.sdk import MpiConfiguration

src_dir = "commandstep_train"
distr_config = MpiConfiguration(node_count=2)

src = ScriptRunConfig(
    source_directory=src_dir,
    command=["python train.py --epochs 30"],
    compute_target=gpu_cluster,
    environment=tf_env,
    distributed_job_config=distr_config,
)

# %%
from scheduler.sdk import CommandStep

train = CommandStep(name="train-mnist", runconfig=src)

# %%
from scheduler.sdk import Pipeline
from scheduler.sdk import Experiment

pipeline = Pipeline(workspace=ws, steps=[train])
pipeline_run = Experiment(ws, "train-commandstep-pipeline").submit(pipeline)

# %%
from scheduler.sdk import RunDetails

RunDetails(pipeline_run).show()
