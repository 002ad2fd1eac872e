"""Prepare Inputs: the files to score and the model to score them with.

Files: the CSV files under --input (a folder, or one .csv file) are linked into --to-score; when
there are none, --sample-files files of synthetic patients are generated there instead, so the
pipeline runs on a fresh machine. Model: model.pkl from --model (the `model` output folder of a
diabetes-training run, or the .pkl itself) is copied into --scoring-model; when there is none, a
small stand-in model of the same shape is trained on synthetic patients.
"""

import argparse
import shutil
from pathlib import Path

import joblib
import numpy as np
from patients import FEATURES, labels, patients
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--input", type=Path, required=True)
parser.add_argument("--model", type=Path, required=True)
parser.add_argument("--sample-files", type=int, default=20)
parser.add_argument("--rows-per-file", type=int, default=20)
parser.add_argument("--seed", type=int, default=7)
parser.add_argument("--to-score", type=Path, required=True, help="output folder")
parser.add_argument("--scoring-model", type=Path, required=True, help="output folder")
args = parser.parse_args()

run = Run.get_context()
rng = np.random.default_rng(args.seed)
args.to_score.mkdir(parents=True, exist_ok=True)
args.scoring_model.mkdir(parents=True, exist_ok=True)

if args.input.is_file():
    given = [args.input]
elif args.input.is_dir():
    given = sorted(p for p in args.input.rglob("*.csv") if p.is_file())
else:
    given = []
if given:
    root = args.input if args.input.is_dir() else args.input.parent
    for path in given:
        name = str(path.relative_to(root)).replace("/", "__")
        (args.to_score / name).symlink_to(path.resolve())
    print(f"Scoring {len(given)} files from {args.input}")
else:
    print(f"No CSV files in {args.input}: generating {args.sample_files} sample files")
    for i in range(args.sample_files):
        batch = patients(rng, args.rows_per_file, first_id=3_000_000 + i * args.rows_per_file)
        batch.to_csv(args.to_score / f"patients-{i:04d}.csv", index=False)
run.log("files_to_score", len(given) or args.sample_files)

source = args.model / "model.pkl" if args.model.is_dir() else args.model
if source.is_file():
    shutil.copy2(source, args.scoring_model / "model.pkl")
    print(f"Using the model {source}")
    run.log("model_source", str(source))
else:
    print(f"No model at {args.model}: training a stand-in on synthetic patients")
    train = patients(rng, 2000, first_id=1_000_000)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(train[FEATURES], labels(train, rng))
    joblib.dump(model, args.scoring_model / "model.pkl")
    run.log("model_source", "stand-in")
