# ruff: noqa: UP032, RUF059 -- written as Azure ML's samples are
# A ParallelRunStep entry script as Azure ML SDK v1 notebooks write it: the model comes from the
# registry by name (a command-line argument), EntryScript gives the logger.
import argparse
import json
import os

from azureml.core.model import Model
from azureml_user.parallel_run import EntryScript


def init():
    global scoring_model

    logger = EntryScript().logger
    logger.info("init() is called.")

    parser = argparse.ArgumentParser(description="Scoring with a registered model")
    parser.add_argument("--model_name", dest="model_name", required=True)
    args, unknown_args = parser.parse_known_args()

    model_path = Model.get_model_path(args.model_name)
    with open(model_path) as model_file:
        scoring_model = json.load(model_file)


def run(mini_batch):
    logger = EntryScript().logger
    logger.info("run() is called with: {}.".format(mini_batch))

    results = []
    for file_path in mini_batch:
        with open(file_path) as f:
            value = float(f.read())
        results.append(
            "{}: {}".format(os.path.basename(file_path), value * scoring_model["factor"])
        )
    return results
