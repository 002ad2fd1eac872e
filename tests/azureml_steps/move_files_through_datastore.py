# A step that moves data the way Azure ML SDK v1 scripts do: upload to the workspace's default
# datastore, read it back as a file dataset, and find the datastore again by name.
from azureml.core import Dataset, Datastore, Run, Workspace

run = Run.get_context()
ws = run.experiment.workspace
datastore = ws.get_default_datastore()

datastore.upload(src_dir="local_data", target_path="uploaded", overwrite=True, show_progress=True)
dataset = Dataset.File.from_files(path=(datastore, "uploaded/*.csv"))
run.log("dataset_files", dataset.to_path())
downloaded = dataset.download(target_path="outputs/downloaded", overwrite=True)
run.log("downloaded", len(downloaded))

same = Datastore.get(Workspace.from_config(), "default")
run.log(
    "fetched_back", same.download(target_path="outputs/copy", prefix="uploaded/", overwrite=True)
)
