"""Summarize Scores: count the scored patients and the predicted diabetic fraction."""

import argparse
import json
from pathlib import Path

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--scores", type=Path, required=True, help="predictions.txt")
args = parser.parse_args()

run = Run.get_context()
rows = [line.split() for line in args.scores.read_text().splitlines() if line.strip()]
files = {row[0] for row in rows}
positive = sum(1 for row in rows if row[2] == "1")
fraction = positive / len(rows) if rows else 0.0
print(f"{len(rows)} patients in {len(files)} files scored; {fraction:.1%} predicted diabetic")
run.log("scored_rows", len(rows))
run.log("scored_files", len(files))
run.log("diabetic_fraction", round(fraction, 4))
Path("outputs").mkdir(exist_ok=True)
Path("outputs/summary.json").write_text(
    json.dumps({"rows": len(rows), "files": len(files), "diabetic_fraction": fraction}, indent=2)
)
