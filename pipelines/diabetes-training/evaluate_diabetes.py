"""Evaluate Model: accuracy and AUC on the held-out rows; fail below --min-accuracy.

Also compares the test rows with the training profile (mean shift in training standard
deviations per feature), the kind of check that catches a broken prep step. Writes
metrics.json into ./outputs, which pipesched keeps with the step run.
"""

import argparse
import json
import sys
from pathlib import Path

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--model", type=Path, required=True, help="model folder")
parser.add_argument("--test-data", type=Path, required=True, help="prepped data folder")
parser.add_argument("--data-profile", type=Path, required=True, help="data profile folder")
parser.add_argument("--min-accuracy", type=float, default=0.6)
args = parser.parse_args()

run = Run.get_context()
model = joblib.load(args.model / "model.pkl")
profile = json.loads((args.data_profile / "profile.json").read_text())
test = pd.read_csv(args.test_data / "test.csv")
features = list(model.feature_names_in_)
X, y = test[features], test["Diabetic"]
print(f"Evaluating on {len(test)} held-out rows")

shift = {
    name: abs(X[name].mean() - profile["columns"][name]["mean"])
    / (profile["columns"][name]["std"] or 1.0)
    for name in features
}
max_shift = float(max(shift.values()))
print(f"Largest mean shift from the training profile: {max_shift:.3f} std")

accuracy = float(accuracy_score(y, model.predict(X)))
auc = float(roc_auc_score(y, model.predict_proba(X)[:, 1]))
print(f"Accuracy: {accuracy:.3f}  AUC: {auc:.3f}")
run.log("accuracy", accuracy)
run.log("auc", auc)
run.log("max_mean_shift", max_shift)

metrics = {"accuracy": accuracy, "auc": auc, "test_rows": len(test), "max_mean_shift": max_shift}
outputs = Path("outputs")
outputs.mkdir(exist_ok=True)
(outputs / "metrics.json").write_text(json.dumps(metrics, indent=2))

if accuracy < args.min_accuracy:
    sys.exit(f"error: accuracy {accuracy:.3f} is below min_accuracy {args.min_accuracy}")
run.complete()
