"""Report: read the roll-up CSV, log metrics and write outputs/report.md."""

import argparse
import csv
from pathlib import Path

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--summary", type=Path, required=True, help="folder holding summary.csv")
args = parser.parse_args()

with (args.summary / "summary.csv").open(newline="") as handle:
    regions = list(csv.DictReader(handle))
if not regions:
    raise SystemExit("no orders matched: lower min_amount or move since back")

run = Run.get_context()
revenue = sum(float(r["revenue"]) for r in regions)
run.log("regions", len(regions))
run.log("revenue", round(revenue, 2))
run.log("top_region", regions[0]["region"])
for r in regions:
    run.log_row("revenue_by_region", region=r["region"], revenue=float(r["revenue"]))

lines = [
    "# Revenue per region",
    "",
    "| region | orders | revenue | average order |",
    "|---|---:|---:|---:|",
]
lines += [
    f"| {r['region']} | {r['orders']} | {float(r['revenue']):.2f} | {float(r['average_order']):.2f} |"
    for r in regions
]
lines += ["", f"Total: {revenue:.2f} over {sum(int(r['orders']) for r in regions)} orders."]
Path("outputs").mkdir(exist_ok=True)
Path("outputs/report.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
