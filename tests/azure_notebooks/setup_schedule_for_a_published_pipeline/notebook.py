# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-setup-schedule-for-a-published-pipeline: a one-step pipeline is
# published and put behind an endpoint; schedules are created on a recurrence, on a datastore,
# and for the endpoint; they are listed, fetched, disabled, enabled and changed.

# %%
import scheduler.sdk
from scheduler.sdk import Workspace

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
from scheduler.sdk import PythonScriptStep

source_directory = "publish_run_train"

trainStep = PythonScriptStep(
    name="Training_Step",
    script_name="train.py",
    compute_target=aml_compute_target,
    source_directory=source_directory,
)
print("TrainStep created")

# %%
from scheduler.sdk import Pipeline

pipeline1 = Pipeline(workspace=ws, steps=[trainStep])
print("Pipeline is built")

# %%
# A name made from the current minute, so that each day's run of the notebook publishes anew.
from datetime import datetime

timenow = datetime.now().strftime("%m-%d-%Y-%H-%M")

pipeline_name = timenow + "-Pipeline"
print(pipeline_name)

published_pipeline1 = pipeline1.publish(name=pipeline_name, description=pipeline_name)
print("Newly published pipeline id: {}".format(published_pipeline1.id))

# %%
from scheduler.sdk import PipelineEndpoint

pipeline_endpoint = PipelineEndpoint.publish(
    workspace=ws,
    name="ScheduledPipelineEndpoint",
    pipeline=pipeline1,
    description="Publish pipeline endpoint for schedule test",
)
pipeline_endpoint

# %%
from scheduler.sdk import PublishedPipeline

all_pub_pipelines = PublishedPipeline.list(ws)

# The last one listed is the one the schedules below run.
print("Published pipelines found in the workspace:")
for pub_pipeline in all_pub_pipelines:
    print(pub_pipeline.id)
    pub_pipeline_id = pub_pipeline.id

print("Published pipeline id to be used for Schedule operations: {}".format(pub_pipeline_id))

# %%
from scheduler.sdk import ScheduleRecurrence, Schedule

recurrence = ScheduleRecurrence(frequency="Day", interval=2, hours=[22], minutes=[30])

schedule = Schedule.create(
    workspace=ws,
    name="My_Schedule",
    pipeline_id=pub_pipeline_id,
    experiment_name="Schedule-run-sample",
    recurrence=recurrence,
    wait_for_provisioning=True,
    description="Schedule Run",
)

print("Created schedule with id: {}".format(schedule.id))

# %%
schedules = Schedule.list(ws, pipeline_id=pub_pipeline_id)

print("Found these schedules for the pipeline id {}:".format(pub_pipeline_id))
for schedule in schedules:
    print(schedule.id)
    if schedule.recurrence is not None:
        schedule_id = schedule.id

print("Schedule id to be used for schedule operations: {}".format(schedule_id))

# %%
schedules = Schedule.list(ws, active_only=True)
print("Your workspace has the following schedules set up:")
for schedule in schedules:
    print("{} (Published pipeline: {}".format(schedule.id, schedule.pipeline_id))

# %%
fetched_schedule = Schedule.get(ws, schedule_id)
print("Using schedule with id: {}".format(fetched_schedule.id))

# %%
fetched_schedule.disable(wait_for_provisioning=True)
fetched_schedule = Schedule.get(ws, schedule_id)
print(
    "Disabled schedule {}. New status is: {}".format(fetched_schedule.id, fetched_schedule.status)
)

# %%
fetched_schedule.enable(wait_for_provisioning=True)
fetched_schedule = Schedule.get(ws, schedule_id)
print("Enabled schedule {}. New status is: {}".format(fetched_schedule.id, fetched_schedule.status))

# %%
recurrence = ScheduleRecurrence(frequency="Hour", interval=2)

fetched_schedule = Schedule.get(ws, schedule_id)

fetched_schedule.update(
    name="My_Updated_Schedule",
    description="Updated_Schedule_Run",
    status="Active",
    wait_for_provisioning=True,
    recurrence=recurrence,
)

fetched_schedule = Schedule.get(ws, fetched_schedule.id)

print(
    "Updated schedule:",
    fetched_schedule.id,
    "\nNew name:",
    fetched_schedule.name,
    "\nNew frequency:",
    fetched_schedule.recurrence.frequency,
    "\nNew status:",
    fetched_schedule.status,
)

# %%
# A schedule that fires when files change on the blob store.
from scheduler.sdk import Datastore

datastore = Datastore(workspace=ws, name="workspaceblobstore")

schedule = Schedule.create(
    workspace=ws,
    name="My_Schedule",
    pipeline_id=pub_pipeline_id,
    experiment_name="Schedule-run-sample",
    datastore=datastore,
    wait_for_provisioning=True,
    description="Schedule Run",
)

print("Created schedule with id: {}".format(schedule.id))

# %%
schedule.disable(wait_for_provisioning=True)
schedule = Schedule.get(ws, schedule_id)
print("Disabled schedule {}. New status is: {}".format(schedule.id, schedule.status))

# %%
pipeline_endpoint_by_name = PipelineEndpoint.get(workspace=ws, name="ScheduledPipelineEndpoint")
published_pipeline_endpoint_id = pipeline_endpoint_by_name.id

recurrence = ScheduleRecurrence(frequency="Day", interval=2, hours=[22], minutes=[30])

schedule = Schedule.create_for_pipeline_endpoint(
    workspace=ws,
    name="My_Endpoint_Schedule",
    pipeline_endpoint_id=published_pipeline_endpoint_id,
    experiment_name="Schedule-run-sample",
    recurrence=recurrence,
    description="Schedule_Run",
    wait_for_provisioning=True,
)

print("Created schedule with id: {}".format(schedule.id))

# %%
schedules_for_pipeline_endpoints = Schedule.get_schedules_for_pipeline_endpoint_id(
    ws, pipeline_endpoint_id=published_pipeline_endpoint_id
)
print(
    "Got all schedules for pipeline endpoint:",
    published_pipeline_endpoint_id,
    "Count:",
    len(schedules_for_pipeline_endpoints),
)

print("done")

# %%
fetched_schedule = Schedule.get(ws, schedule_id)
print("Using schedule with id: {}".format(fetched_schedule.id))

fetched_schedule.disable(wait_for_provisioning=True)
fetched_schedule = Schedule.get(ws, schedule_id)
print(
    "Disabled schedule {}. New status is: {}".format(fetched_schedule.id, fetched_schedule.status)
)
