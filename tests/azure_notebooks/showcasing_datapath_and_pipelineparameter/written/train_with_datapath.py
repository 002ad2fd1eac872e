# The step the notebook writes with %%writefile: it shows what the pipeline passed in.
import argparse
import os

parser = argparse.ArgumentParser("train")
parser.add_argument("--arg1", type=str, help="a string parameter")
parser.add_argument("--arg2", type=str, help="a DataPath parameter")
args = parser.parse_args()

print(f"string argument  : {args.arg1}")
print(f"datapath argument: {args.arg2}")
print(f"files under it   : {sorted(os.listdir(args.arg2))}")
