"""pipesched's stand-in for ``azureml_user``, the package Azure ML puts beside a ParallelRunStep's
entry script: ``from azureml_user.parallel_run import EntryScript``."""
