# Step script of the first step: no inputs, a metric to show that it ran.
from azureml.core import Run

run = Run.get_context()
print("train_step: fitting on the sample data")
run.log("epochs", 3)
run.log("loss", 0.25)
