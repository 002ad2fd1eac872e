"""Small worlds for the definition tests: a config, a pipelines folder, pipeline files."""

from __future__ import annotations

import textwrap
from pathlib import Path

from scheduler.definitions.config import Config, load_config

CONFIG_YAML = """\
pipelines_dir: ../pipelines
schedules: schedules.yaml
datastores:
  default: {path: ../data}
compute:
  local: {type: local, max_workers: 2}
"""


def make_config(root: Path, text: str = CONFIG_YAML, schedules: str = "schedules: []\n") -> Config:
    """A config under ``root/config`` with pipelines in ``root/pipelines`` and the default
    datastore in ``root/data`` (both created)."""
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "pipelines").mkdir(exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "config" / "pipesched.yaml").write_text(text)
    (root / "config" / "schedules.yaml").write_text(schedules)
    return load_config(root / "config" / "pipesched.yaml")


def write_pipeline(
    config: Config, folder: str, yaml_text: str, files: tuple[str, ...] = ("prep.py", "train.py")
) -> Path:
    """``pipelines/<folder>/pipeline.yaml`` with ``yaml_text`` (dedented) and empty script files."""
    directory = config.pipelines_dir / folder
    directory.mkdir(parents=True, exist_ok=True)
    for name in files:
        (directory / name).write_text("print('hi')\n")
    file = directory / "pipeline.yaml"
    file.write_text(textwrap.dedent(yaml_text))
    return file


GOOD_PIPELINE = """\
name: diabetes-training
description: Prepare the diabetes data, then train and register a model
continue_on_step_failure: false
parameters:
  reg_rate: {type: float, default: 0.01}
  raw_data: {type: path, default: "datastore://default/diabetes-data"}
data:
  prepped_data: {datastore: default}
steps:
  prep:
    type: python_script
    display_name: Prepare Data
    source_directory: .
    script: prep.py
    arguments: [--input-data, "${{parameters.raw_data}}", --prepped-data, "${{data.prepped_data}}"]
    outputs: [prepped_data]
    allow_reuse: true
    compute: local
    timeout: 30m
    retries: 1
    environment: {python: null, variables: {OMP_NUM_THREADS: "1"}}
  train:
    type: python_script
    script: train.py
    arguments: [--training-data, "${{data.prepped_data}}", --reg, "${{parameters.reg_rate}}"]
    inputs: [prepped_data]
"""
