# Third step: reads both earlier outputs and the pipeline's parameter.
import argparse
import os

from azureml.core import Run

parser = argparse.ArgumentParser("compare")
parser.add_argument("--compare_data1", type=str)
parser.add_argument("--compare_data2", type=str)
parser.add_argument("--output_compare", type=str)
parser.add_argument("--pipeline_param", type=int)
args = parser.parse_args()

with open(os.path.join(args.compare_data1, "rows.csv")) as rows:
    row_count = sum(1 for _ in rows) - 1
with open(os.path.join(args.compare_data2, "ages.txt")) as ages:
    age_count = sum(1 for _ in ages)
os.makedirs(args.output_compare, exist_ok=True)
with open(os.path.join(args.output_compare, "result.txt"), "w") as target:
    target.write(f"rows={row_count} ages={age_count} param={args.pipeline_param}\n")
print(f"pipeline_param is {args.pipeline_param}")
Run.get_context().log("pipeline_param", args.pipeline_param)
