"""Score one dropped file: write its line count next to the outputs."""

import argparse
from pathlib import Path

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--input")
args = parser.parse_args()
run = Run.get_context()
count = len(Path(args.input).read_text().splitlines())
run.log("scored_rows", count)
print(f"scored {count} rows of {args.input}")
