# First step: reads the raw CSV (a file on a datastore) and writes the rows it keeps.
import argparse
import csv
import os

from azureml.core import Run

parser = argparse.ArgumentParser("train")
parser.add_argument("--input_data", type=str, help="the raw CSV")
parser.add_argument("--output_train", type=str, help="folder for the kept rows")
args = parser.parse_args()

print(f"input file: {args.input_data}")
with open(args.input_data) as source:
    rows = [row for row in csv.DictReader(source) if row["Age"]]

os.makedirs(args.output_train, exist_ok=True)
with open(os.path.join(args.output_train, "rows.csv"), "w", newline="") as target:
    writer = csv.DictWriter(target, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
Run.get_context().log("rows_kept", len(rows))
print(f"kept {len(rows)} rows")
