# The command's script: a training loop over --epochs that logs its loss.
import argparse

from azureml.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()

run = Run.get_context()
loss = 1.0
for _ in range(args.epochs):
    loss *= 0.9
print(f"trained {args.epochs} epochs, loss {loss:.4f}")
run.log("epochs", args.epochs)
run.log("loss", round(loss, 4))
