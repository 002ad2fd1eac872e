# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-how-to-use-pipeline-drafts: a PipelineDraft is created from a
# pipeline, listed by tag, fetched by id, given another pipeline, run, and published.

# %%
import scheduler.sdk
from scheduler.sdk import Workspace
from scheduler.sdk import RunDetails

print("SDK version:", scheduler.sdk.VERSION)

ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")

# %%
from scheduler.sdk import AmlCompute, ComputeTarget
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

# %%
from scheduler.sdk import Pipeline
from scheduler.sdk import PythonScriptStep

source_directory = "publish_run_train"

train_step = PythonScriptStep(
    name="Training_Step",
    script_name="train.py",
    compute_target=aml_compute_target,
    source_directory=source_directory,
)
print("train step created")

pipeline = Pipeline(workspace=ws, steps=[train_step])
print("Pipeline is built")

# %%
from scheduler.sdk import PipelineDraft

pipeline_draft = PipelineDraft.create(
    ws,
    name="TestPipelineDraft",
    description="draft description",
    experiment_name="pipeline_draft_sample",
    pipeline=pipeline,
    continue_on_step_failure=True,
    tags={"dev": "true"},
    properties={"train": "value"},
)

created_pipeline_draft_id = pipeline_draft.id

# %%
pipeline_drafts = PipelineDraft.list(ws, tags={"dev": "true"})

for pipeline_draft in pipeline_drafts:
    print(pipeline_draft)

# %%
pipeline_draft = PipelineDraft.get(ws, id=created_pipeline_draft_id)

# %%
# A draft can change: here it gets a pipeline whose step has another name.
new_train_step = PythonScriptStep(
    name="New_Training_Step",
    script_name="train.py",
    compute_target=aml_compute_target,
    source_directory=source_directory,
)

new_pipeline = Pipeline(workspace=ws, steps=[new_train_step])

pipeline_draft.update(
    name="UpdatedPipelineDraft", description="has updated train step", pipeline=new_pipeline
)

# %%
pipeline_run = pipeline_draft.submit_run()
pipeline_run

# %%
published_pipeline = pipeline_draft.publish()
published_pipeline
