# Second step: reads the first step's rows and keeps two columns of them.
import argparse
import csv
import os

parser = argparse.ArgumentParser("extract")
parser.add_argument("--input_extract", type=str, help="folder of the first step's rows")
parser.add_argument("--output_extract", type=str, help="folder for the extracted columns")
args = parser.parse_args()

with open(os.path.join(args.input_extract, "rows.csv")) as source:
    pairs = [(row["Age"], row["Survived"]) for row in csv.DictReader(source)]

os.makedirs(args.output_extract, exist_ok=True)
with open(os.path.join(args.output_extract, "age_survived.csv"), "w") as target:
    target.write("Age,Survived\n")
    target.writelines(f"{age},{survived}\n" for age, survived in pairs)
print(f"extracted {len(pairs)} pairs")
