# Second step: the ages of the first step's rows.
import argparse
import csv
import os

parser = argparse.ArgumentParser("extract")
parser.add_argument("--input_extract", type=str)
parser.add_argument("--output_extract", type=str)
args = parser.parse_args()

with open(os.path.join(args.input_extract, "rows.csv")) as source:
    ages = [float(row["Age"]) for row in csv.DictReader(source)]
os.makedirs(args.output_extract, exist_ok=True)
with open(os.path.join(args.output_extract, "ages.txt"), "w") as target:
    target.writelines(f"{age}\n" for age in ages)
print(f"extracted {len(ages)} ages")
