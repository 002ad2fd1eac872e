"""One figure of the benchmark table: median, min, p99, max over trials, and a ratio against a
baseline measured in the same run."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figure(
    name: str,
    samples: list[float],
    *,
    unit: str = "ms",
    baseline: float | None = None,
    baseline_name: str | None = None,
) -> dict:
    median = statistics.median(samples)
    return {
        "name": name,
        "unit": unit,
        "median": median,
        "min": min(samples),
        "max": max(samples),
        "p99": percentile(samples, 0.99),
        "trials": len(samples),
        "ratio": median / baseline if baseline else None,
        "baseline": baseline_name,
    }
