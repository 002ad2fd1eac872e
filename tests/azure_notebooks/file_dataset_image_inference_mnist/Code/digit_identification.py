# ruff: noqa: UP031 -- written as Azure ML's samples are
# The entry script: init() loads the registered model, run() labels each image of a mini-batch.
# An "image" here is a small file whose bytes the model maps to a digit.
import json
import os

from azureml.core.model import Model


def init():
    global labels
    model_root = Model.get_model_path("mnist-prs")
    with open(os.path.join(model_root, "digits.json")) as model_file:
        labels = json.load(model_file)["labels"]


def run(mini_batch):
    result_list = []
    for image in mini_batch:
        with open(image, "rb") as pixels:
            digit = labels[pixels.read().strip().decode()]
        result_list.append("%s: %d" % (os.path.basename(image), digit))
    return result_list
