"""Entry point: ``python -m tests.benchmarks [NAME ...] [--quick] [--json]``."""

from __future__ import annotations

import argparse
import json
import sys

from tests.benchmarks import (
    api,
    backfill,
    cli_reads,
    file_burst,
    file_drop_delay,
    fire_delay,
    ha_takeover,
    heavy_import,
    history_scale,
    parallel_run,
    peers,
    prune,
    schedule_scale,
    sdk_submit,
    step_overhead,
    warm_steps,
    web_browser,
    web_pages,
)

BENCHMARKS = {
    "step_overhead": step_overhead.main,
    "fire_delay": fire_delay.main,
    "parallel_run": parallel_run.main,
    "api": api.main,
    "file_drop_delay": file_drop_delay.main,
    "heavy_import": heavy_import.main,
    "file_burst": file_burst.main,
    "schedule_scale": schedule_scale.main,
    "history_scale": history_scale.main,
    "cli_reads": cli_reads.main,
    "sdk_submit": sdk_submit.main,
    "warm_steps": warm_steps.main,
    "peers": peers.main,
    "web_browser": web_browser.main,
    "web_pages": web_pages.main,
    "ha_takeover": ha_takeover.main,
    "prune": prune.main,
    "backfill": backfill.main,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], default=[])
    parser.add_argument("--quick", action="store_true", help="fewer trials")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    parser.add_argument(
        "--peers", action="store_true", help="install Prefect, Dagster, Luigi in venvs; compare"
    )
    parser.add_argument("--work", help="peers' work folder, kept between runs (venvs live there)")
    args = parser.parse_args()
    figures = []
    for name in args.names or list(BENCHMARKS):
        extra = {"peers": args.peers, "work": args.work} if name == "peers" else {}
        figures.extend(BENCHMARKS[name](quick=args.quick, **extra))
    if args.json:
        json.dump(figures, sys.stdout, indent=2)
        print()
    else:
        print(f"{'figure':<44} {'median':>9} {'min':>9} {'p99':>9} {'max':>9} {'ratio':>7}  unit")
        for f in figures:
            ratio = f"{f['ratio']:.2f}x" if f.get("ratio") is not None else "-"
            p99 = f"{f['p99']:.1f}" if f.get("p99") is not None else "-"
            baseline = f" vs {f['baseline']}" if f.get("baseline") else ""
            print(
                f"{f['name']:<44} {f['median']:>9.1f} {f['min']:>9.1f} {p99:>9} "
                f"{f['max']:>9.1f} {ratio:>7}  {f['unit']}{baseline}"
            )
    return 0


sys.exit(main())
