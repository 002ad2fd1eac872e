"""Prepare Data: generate a synthetic diabetes-like dataset and split it for training.

Nothing is downloaded: the rows are drawn from a seeded random generator, shaped after the
diabetes.csv of the Azure ML tutorials (one row per patient, ten clinical features and a
binary Diabetic label). Writes train.csv and test.csv into the --prepped-data folder.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=42)
parser.add_argument("--rows", type=int, default=4000)
parser.add_argument("--test-fraction", type=float, default=0.3)
parser.add_argument("--prepped-data", type=Path, required=True, help="output folder")
args = parser.parse_args()

run = Run.get_context()
rng = np.random.default_rng(args.seed)
n = args.rows
print(f"Generating {n} patients with seed {args.seed}")

glucose = rng.normal(115, 30, n).clip(45, 200)
data = pd.DataFrame(
    {
        "PatientID": np.arange(1_000_000, 1_000_000 + n),
        "Pregnancies": rng.poisson(3, n).clip(0, 14),
        "PlasmaGlucose": glucose.round(),
        "DiastolicBloodPressure": rng.normal(72, 12, n).clip(40, 120).round(),
        "TricepsThickness": rng.normal(28, 10, n).clip(7, 60).round(),
        "SerumInsulin": rng.lognormal(4.3, 0.6, n).clip(15, 800).round(),
        "BMI": rng.normal(31, 7, n).clip(18, 56).round(1),
        "DiabetesPedigree": rng.gamma(2.0, 0.25, n).clip(0.08, 2.4).round(3),
        "Age": (21 + rng.gamma(2.0, 8.0, n)).clip(21, 80).round(),
        "HbA1c": (3.2 + glucose / 45 + rng.normal(0, 0.5, n)).round(1),
        "Cholesterol": rng.normal(190, 35, n).clip(110, 320).round(),
    }
)

# The label follows a logistic model of a few features, so a linear classifier can learn it
# but not perfectly (accuracy lands near 0.8).
logit = (
    -1.0
    + 0.035 * (data["PlasmaGlucose"] - 115)
    + 0.08 * (data["BMI"] - 31)
    + 0.04 * (data["Age"] - 37)
    + 1.2 * (data["DiabetesPedigree"] - 0.5)
    + 0.12 * (data["Pregnancies"] - 3)
)
data["Diabetic"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)

# A seeded shuffle, so train and evaluate agree on which rows are held out.
shuffled = data.sample(frac=1.0, random_state=args.seed)
n_test = round(n * args.test_fraction)
test, train = shuffled.iloc[:n_test], shuffled.iloc[n_test:]

args.prepped_data.mkdir(parents=True, exist_ok=True)
train.to_csv(args.prepped_data / "train.csv", index=False)
test.to_csv(args.prepped_data / "test.csv", index=False)
print(f"Wrote {len(train)} training and {len(test)} test rows to {args.prepped_data}")

run.log("rows", n)
run.log("diabetic_fraction", float(data["Diabetic"].mean()))
run.complete()
