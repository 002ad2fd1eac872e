# A training step as Azure ML SDK v1 notebooks write it: the run from the context, the input
# dataset by name, metrics on the step run and on the pipeline run. It imports azureml and
# nothing of pipesched.
import argparse
import os

from azureml.core import Run

parser = argparse.ArgumentParser("train")
parser.add_argument("--input-data", type=str, dest="input_data", help="input data folder")
parser.add_argument("--reg", type=float, dest="reg", default=0.01, help="regularization rate")
args = parser.parse_args()

run = Run.get_context()
raw_data = run.input_datasets["raw_data"]
print("input data:", args.input_data, "named input:", raw_data)

rows = 0
for name in sorted(os.listdir(raw_data)):
    with open(os.path.join(raw_data, name)) as f:
        rows += sum(1 for _ in f)

run.log("rows", rows)
run.log("regularization_rate", args.reg)
run.log_list("fibonacci", [0, 1, 1, 2, 3, 5, 8, 13])
for loss in [0.9, 0.5, 0.3]:
    run.log("loss", loss)
run.log_table("per_epoch", {"epoch": [1, 2, 3], "loss": [0.9, 0.5, 0.3]})
run.parent.log("rows_seen_by_pipeline", rows)

print("experiment:", run.experiment.name)
print("step run:", run.id, "pipeline run:", run.parent.id)
run.complete()
