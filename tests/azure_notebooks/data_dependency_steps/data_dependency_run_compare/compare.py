# Third step: compares the raw file (a DataPath parameter) with the extracted columns.
import argparse
import os

from azureml.core import Run

parser = argparse.ArgumentParser("compare")
parser.add_argument("--compare_data1", type=str, help="the raw CSV")
parser.add_argument("--compare_data2", type=str, help="folder of the extracted columns")
parser.add_argument("--output_compare", type=str, help="folder for the comparison")
args = parser.parse_args()

with open(args.compare_data1) as raw:
    raw_rows = sum(1 for _ in raw) - 1
with open(os.path.join(args.compare_data2, "age_survived.csv")) as extracted:
    extracted_rows = sum(1 for _ in extracted) - 1

os.makedirs(args.output_compare, exist_ok=True)
with open(os.path.join(args.output_compare, "comparison.txt"), "w") as target:
    target.write(f"raw={raw_rows} extracted={extracted_rows}\n")
Run.get_context().log("dropped_rows", raw_rows - extracted_rows)
print(f"raw rows {raw_rows}, extracted rows {extracted_rows}")
