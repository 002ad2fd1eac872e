# First step: reads the input dataset (a CSV file) and writes its rows with an age.
import argparse
import csv
import os

from azureml.core import Run

parser = argparse.ArgumentParser("train")
parser.add_argument("--input_data", type=str, help="the input dataset")
parser.add_argument("--output_train", type=str, help="folder for the rows kept")
args = parser.parse_args()

run = Run.get_context()
print("input dataset: {}".format(run.input_datasets["test_data"]))
with open(args.input_data) as source:
    rows = [row for row in csv.DictReader(source) if row["Age"]]
os.makedirs(args.output_train, exist_ok=True)
with open(os.path.join(args.output_train, "rows.csv"), "w", newline="") as target:
    writer = csv.DictWriter(target, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
run.log("rows", len(rows))
