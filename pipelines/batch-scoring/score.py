"""Score Batches: the parallel_run entry script.

init() loads the model once per worker process; run() scores one mini-batch of CSV files and
returns one row per patient (file, patient id, predicted label, probability), which parallel_run
appends to predictions.txt.
"""

import argparse
import os
from pathlib import Path

import joblib
import pandas as pd

model = None


def init():
    global model
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    args, _ = parser.parse_known_args()
    model = joblib.load(args.model / "model.pkl")
    print(f"Loaded the model in process {os.getpid()}")


def run(mini_batch):
    frames = []
    for path in mini_batch:
        data = pd.read_csv(path)
        features = data.drop(columns=[c for c in ("PatientID", "Diabetic") if c in data])
        frames.append(
            pd.DataFrame(
                {
                    "file": os.path.basename(path),
                    "PatientID": data["PatientID"],
                    "prediction": model.predict(features),
                    "probability": model.predict_proba(features)[:, 1].round(4),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
