# ruff: noqa -- the cells as the notebook holds them: its imports, order and formatting calls
# Re-creation of aml-pipelines-getting-started: a file uploaded to a datastore, three steps run
# side by side, then the same steps chained with run_after and submitted again.

# %%
import os
import requests
import tempfile
import scheduler.sdk
from scheduler.sdk import Workspace, Experiment, Datastore
from scheduler.sdk import RunDetails

print("SDK version:", scheduler.sdk.VERSION)

# %%
from scheduler.sdk import Pipeline
from scheduler.sdk import PythonScriptStep

print("Pipeline SDK-specific imports completed")

# %%
ws = Workspace.from_config()
print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")

# The workspace's default datastore, then the blob store the notebook uses by name.
def_blob_store = ws.get_default_datastore()
def_blob_store = Datastore(ws, "workspaceblobstore")
print("Blobstore's name: {}".format(def_blob_store.name))

# %%
# In place of the download: the sample CSV kept next to the notebook.
titanic_file = os.path.join(tempfile.mkdtemp(), "Titanic.csv")
with open(titanic_file, "w") as f:
    f.write(open("Titanic.csv").read())
def_blob_store.upload_files([titanic_file], target_path="titanic", overwrite=True)
print("Upload call completed")

# %%
cts = ws.compute_targets
for ct in cts:
    print(ct)

# %%
from scheduler.sdk import ComputeTarget, AmlCompute
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

print("Azure Machine Learning Compute attached")

# %%
source_directory = "./train"
print("Source directory for the step is {}.".format(os.path.realpath(source_directory)))

step1 = PythonScriptStep(
    name="train_step",
    script_name="train.py",
    compute_target=aml_compute,
    source_directory=source_directory,
    allow_reuse=True,
)
print("Step1 created")

# %%
source_directory = "./compare"
print("Source directory for the step is {}.".format(os.path.realpath(source_directory)))

step2 = PythonScriptStep(
    name="compare_step",
    script_name="compare.py",
    compute_target=aml_compute,
    source_directory=source_directory,
)

# A RunConfiguration with Docker and conda settings for the third step.
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

source_directory = "./extract"
print("Source directory for the step is {}.".format(os.path.realpath(source_directory)))

step3 = PythonScriptStep(
    name="extract_step",
    script_name="extract.py",
    compute_target=aml_compute,
    source_directory=source_directory,
    runconfig=run_config,
)

steps = [step1, step2, step3]
print("Step lists created")

# %%
# The three steps share no data: they run side by side.
pipeline1 = Pipeline(workspace=ws, steps=steps)
print("Pipeline is built")

# %%
pipeline1.validate()
print("Pipeline validation complete")

# %%
pipeline_run1 = Experiment(ws, "Hello_World1").submit(pipeline1, regenerate_outputs=False)
print("Pipeline is submitted for execution")

# %%
RunDetails(pipeline_run1).show()

# %%
step_runs = pipeline_run1.get_children()
for step_run in step_runs:
    status = step_run.get_status()
    print("Script:", step_run.name, "status:", status)

    if status == "Failed":
        joblog = step_run.get_job_log()
        print("job log:", joblog)

# %%
# Now in a chain: step3 after step2, step2 after step1. Giving the last step is enough; the
# pipeline finds the others.
step2.run_after(step1)
step3.run_after(step2)

pipeline2 = Pipeline(workspace=ws, steps=[step3])
print("Pipeline is built")

pipeline2.validate()
print("Simple validation complete")

# %%
pipeline_run2 = Experiment(ws, "Hello_World2").submit(pipeline2)
print("Pipeline is submitted for execution")

# %%
RunDetails(pipeline_run2).show()
