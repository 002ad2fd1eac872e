"""A project whose pipelines train, register and load models, for the model registry's tests.

``train-and-score``: ``train`` writes ``outputs/model.pkl`` and registers it with
``run.register_model`` (the way Azure ML step scripts do); ``score`` runs after it and loads the
model with ``Model.get_model_path``. ``azure-style`` registers a folder with
``Model.register(Run.get_context().experiment.workspace, ...)``, as Azure's own
``register_model.py`` does. ``train-only`` leaves ``outputs/model.pkl`` for a notebook to
register from the run."""

from __future__ import annotations

from pathlib import Path

from tests.projects import Project, make_project

TRAIN_AND_SCORE = """
parameters:
  reg: {type: float, default: 0.1}
steps:
  train:
    type: python_script
    script: train.py
    arguments: ["${{parameters.reg}}"]
  score:
    type: python_script
    script: score.py
    depends_on: [train]
"""
TRAIN_SCRIPT = """
    import os, sys
    from scheduler.runtime import Run
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.pkl", "w") as handle:
        handle.write(f"ridge reg={sys.argv[1]}")
    run = Run.get_context()
    model = run.register_model(
        model_name="diabetes-model",
        model_path="outputs/model.pkl",
        tags={"area": "diabetes", "reg": float(sys.argv[1])},
        description="Ridge regression",
    )
    print(f"registered {model.id} version {model.version}", flush=True)
    with open("outputs/model.pkl", "w") as handle:
        handle.write("changed after registering")
"""
SCORE_SCRIPT = """
    from scheduler.runtime import Model
    path = Model.get_model_path("diabetes-model")
    with open(path) as handle:
        print(f"scoring with {handle.read()} from {path}", flush=True)
"""
AZURE_STYLE = """
steps:
  register: {type: python_script, script: register_model.py}
"""
AZURE_STYLE_SCRIPT = """
    import os
    from scheduler.runtime import Model, Run
    os.makedirs("./model/", exist_ok=True)
    with open("./model/weights.bin", "w") as handle:
        handle.write("dnn weights")
    ws = Run.get_context().experiment.workspace
    model = Model.register(workspace=ws, model_name="tf-dnn-mnist", model_path="./model/")
    print(f"registered {model.name} {model.version}", flush=True)
"""
TRAIN_ONLY = """
steps:
  train: {type: python_script, script: train.py}
  report: {type: python_script, script: report.py, depends_on: [train]}
"""
TRAIN_ONLY_SCRIPT = """
    import os
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.pkl", "w") as handle:
        handle.write("trained in a run")
"""


def model_project(root: Path, **settings) -> Project:
    project = make_project(root, **settings)
    project.pipeline(
        "train-and-score", TRAIN_AND_SCORE, {"train.py": TRAIN_SCRIPT, "score.py": SCORE_SCRIPT}
    )
    project.pipeline("azure-style", AZURE_STYLE, {"register_model.py": AZURE_STYLE_SCRIPT})
    project.pipeline(
        "train-only",
        TRAIN_ONLY,
        {"train.py": TRAIN_ONLY_SCRIPT, "report.py": "print('reported')\n"},
    )
    return project


def model_file(tmp_path: Path, name: str = "model.pkl", content: str = "weights") -> Path:
    """A model file a notebook made."""
    path = tmp_path / "notebook" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path
