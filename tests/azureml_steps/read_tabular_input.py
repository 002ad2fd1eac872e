# A step that reads a tabular input by name, as Azure ML SDK v1 scripts do with a TabularDataset.
from azureml.core import Run

run = Run.get_context()
frame = run.input_datasets["tabular_dataset"].to_pandas_dataframe()
print(frame)
run.log("row_count", len(frame))
run.log("total_income", float(frame["INCOME"].sum()))
