"""Train Model: fit a logistic regression on the prepared training rows.

The regularisation rate comes from the pipeline parameter reg_rate (C = 1 / reg_rate), as in
the Azure ML tutorial. Writes model.pkl (joblib) into the --model folder.
"""

import argparse
from pathlib import Path

import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--training-data", type=Path, required=True, help="prepped data folder")
parser.add_argument("--reg", type=float, default=0.01, help="regularisation rate")
parser.add_argument("--model", type=Path, required=True, help="output folder")
args = parser.parse_args()

run = Run.get_context()
train = pd.read_csv(args.training_data / "train.csv")
X = train.drop(columns=["PatientID", "Diabetic"])
y = train["Diabetic"]
print(f"Training on {len(train)} rows, {X.shape[1]} features, reg_rate={args.reg}")
run.log("regularization_rate", args.reg)

# Scaling inside the model keeps evaluate (and any later scoring) free of preprocessing code.
model = make_pipeline(StandardScaler(), LogisticRegression(C=1 / args.reg, max_iter=1000))
model.fit(X, y)

train_accuracy = float(model.score(X, y))
print(f"Training accuracy: {train_accuracy:.3f}")
run.log("training_accuracy", train_accuracy)
coefficients = model[-1].coef_[0]
run.log_list("coef", [round(float(c), 4) for c in coefficients])
run.log_list("features", list(X.columns))

args.model.mkdir(parents=True, exist_ok=True)
joblib.dump(model, args.model / "model.pkl")
print(f"Saved model to {args.model / 'model.pkl'}")
run.complete()
