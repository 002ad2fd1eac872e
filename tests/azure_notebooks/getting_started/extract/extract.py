# Step script that extracts features; it runs with a RunConfiguration given in the notebook.
from azureml.core import Run

run = Run.get_context()
features = ["age", "fare", "pclass"]
print("extract_step: extracted", len(features), "features")
run.log("features", len(features))
