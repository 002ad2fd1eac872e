# The step the notebook writes with %%writefile: it reads both datasets by their input names.
from azureml.core import Run

file_dataset_path = Run.get_context().input_datasets["file_dataset"]
with open(file_dataset_path) as f:
    print(f.read())

tabular_dataset = Run.get_context().input_datasets["tabular_dataset"]
frame = tabular_dataset.to_pandas_dataframe()
print("tabular rows:", len(frame))
print(frame)
