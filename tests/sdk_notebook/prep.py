"""Prepare: concatenate the raw CSV files into one prepped file (an Azure ML step script)."""

import argparse
from pathlib import Path

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--input-data")
parser.add_argument("--prepped-data")
args = parser.parse_args()

run = Run.get_context()
lines = [
    line for f in sorted(Path(args.input_data).glob("*.csv")) for line in f.read_text().splitlines()
]
out = Path(args.prepped_data)
out.mkdir(parents=True, exist_ok=True)
(out / "prepped.csv").write_text("\n".join(lines) + "\n")
run.log("rows", len(lines))
print(f"prepared {len(lines)} rows from {run.input_datasets['raw_data']}")
