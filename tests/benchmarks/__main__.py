"""Entry point: ``python -m tests.benchmarks [NAME ...] [--quick] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys

from tests.benchmarks import step_overhead

BENCHMARKS = {"step_overhead": step_overhead.main}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], default=[])
    parser.add_argument("--quick", action="store_true", help="fewer trials")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    args = parser.parse_args()
    figures = []
    for name in args.names or list(BENCHMARKS):
        figures.extend(BENCHMARKS[name](quick=args.quick))
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        print()
    else:
        print(f"{'figure':<44} {'median':>10} {'min':>10} {'max':>10} {'ratio':>7}  baseline")
        for f in figures:
            ratio = f"{f['ratio']:.2f}x" if f.get("ratio") is not None else "-"
            print(
                f"{f['name']:<44} {f['median']:>10.1f} {f['min']:>10.1f} {f['max']:>10.1f} "
                f"{ratio:>7}  {f.get('baseline') or ''} ({f['unit']})"
            )
    return 0


sys.exit(main())
