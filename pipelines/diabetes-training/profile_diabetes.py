"""Profile Data: column statistics of the prepared data, for evaluate to check against.

Writes profile.json (row counts and, per column, mean, std, min, max and missing values) into
the --data-profile folder, and logs a row of statistics per column.
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--prepped-data", type=Path, required=True, help="prepped data folder")
parser.add_argument("--data-profile", type=Path, required=True, help="output folder")
args = parser.parse_args()

run = Run.get_context()
train = pd.read_csv(args.prepped_data / "train.csv")
test = pd.read_csv(args.prepped_data / "test.csv")
data = train.drop(columns=["PatientID"])
print(f"Profiling {len(data)} training rows, {data.shape[1]} columns")

stats = data.describe().T  # count, mean, std, min, 25%, 50%, 75%, max per column
columns = {
    name: {
        "mean": round(float(row["mean"]), 4),
        "std": round(float(row["std"]), 4),
        "min": float(row["min"]),
        "max": float(row["max"]),
        "missing": int(data[name].isna().sum()),
    }
    for name, row in stats.iterrows()
}
profile = {"train_rows": len(train), "test_rows": len(test), "columns": columns}

args.data_profile.mkdir(parents=True, exist_ok=True)
(args.data_profile / "profile.json").write_text(json.dumps(profile, indent=2))
print(f"Wrote {args.data_profile / 'profile.json'}")

run.log("train_rows", len(train))
run.log("test_rows", len(test))
run.log("missing_values", int(data.isna().sum().sum()))
run.log_list("columns", list(columns))
for name, column in columns.items():
    run.log_row("profile", column=name, mean=column["mean"], std=column["std"])
run.complete()
