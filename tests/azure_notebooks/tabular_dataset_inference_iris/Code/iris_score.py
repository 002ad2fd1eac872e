# ruff: noqa: UP032, RUF059 -- written as Azure ML's samples are
# The entry script: init() loads the registered model named on the command line; run() gets a
# pandas DataFrame of rows and returns them with the predicted variety in place of the last
# column.
import argparse
import pickle

from azureml.core.model import Model
from azureml_user.parallel_run import EntryScript


def init():
    global iris_model

    logger = EntryScript().logger
    logger.info("init() is called.")

    parser = argparse.ArgumentParser(description="Iris scoring")
    parser.add_argument("--model_name", dest="model_name", required=True)
    args, unknown_args = parser.parse_known_args()

    with open(Model.get_model_path(args.model_name), "rb") as model_file:
        iris_model = pickle.load(model_file)


def run(input_data):
    logger = EntryScript().logger
    logger.info("run() is called with {} rows.".format(len(input_data)))

    cutoff = iris_model["petal_length_cutoff"]
    result = input_data.drop(input_data.columns[4:], axis=1)
    result["variety"] = [
        "Setosa" if length < cutoff else "Versicolor" for length in result["petal.length"]
    ]
    return result
