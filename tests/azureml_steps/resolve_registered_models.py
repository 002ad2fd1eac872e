# A step that finds registered models the ways Azure ML SDK v1 scripts do: the latest version, a
# given version, a model registered as a folder, a download, and the errors for what is missing.
import os

from azureml.core import Model, Run
from azureml.exceptions import ModelNotFoundException, WebserviceException

run = Run.get_context()

model_dir = Model.get_model_path("digits")
with open(os.path.join(model_dir, "weights.txt")) as f:
    run.log("latest_weights", f.read())
run.log("latest_path", model_dir)
run.log("first_path", Model.get_model_path("digits", version=1))

model = Model(run.experiment.workspace, "digits")
run.log("model_id", model.id)
run.log("downloaded", model.download(target_dir="outputs", exist_ok=True))

try:
    Model.get_model_path("no-such-model")
except ModelNotFoundException as e:
    run.log("missing", e.message)
try:
    Model.get_model_path("digits", version="1")
except WebserviceException as e:
    run.log("bad_version", e.message)
