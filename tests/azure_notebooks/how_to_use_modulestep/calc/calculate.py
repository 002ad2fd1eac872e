# The module's script: adds and multiplies two numbers, each given as a value or as a file that
# holds it, and writes each result as a file at the output path it is given.
import argparse
import os

parser = argparse.ArgumentParser("calculate")
parser.add_argument("--arg_num1", type=int)
parser.add_argument("--arg_num2", type=int)
parser.add_argument("--file_num1", type=str)
parser.add_argument("--file_num2", type=str)
parser.add_argument("--output_sum", type=str)
parser.add_argument("--output_product", type=str)
args = parser.parse_args()


def number(value, path):
    if value is not None:
        return value
    with open(path) as source:
        return int(source.read())


def write(value, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as target:
        target.write(str(value))


first = number(args.arg_num1, args.file_num1)
second = number(args.arg_num2, args.file_num2)
print(f"sum {first + second}, product {first * second}")
write(first + second, args.output_sum)
write(first * second, args.output_product)
