"""Train: read the prepped file and log metrics (an Azure ML step script)."""

import argparse
from pathlib import Path

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--training-data")
parser.add_argument("--reg", type=float)
args = parser.parse_args()

run = Run.get_context()
rows = (Path(args.training_data) / "prepped.csv").read_text().splitlines()
run.log("reg", args.reg)
run.log("accuracy", round(1 - args.reg, 3))
print(f"trained on {len(rows)} rows with reg {args.reg}")
