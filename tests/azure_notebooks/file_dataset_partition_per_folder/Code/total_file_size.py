# The entry script: each mini-batch is one partition of the files (one user and genre); run()
# gets the partition's values in its second argument and returns one row per file.
import os


def init():
    print("init: summing file sizes per partition")


def run(mini_batch, mini_batch_context):
    partition = mini_batch_context.partition_key_value
    print(f"partition {partition}: {len(mini_batch)} files, dataset {mini_batch_context.dataset}")
    sizes = [(os.path.basename(path), os.path.getsize(path)) for path in mini_batch]
    total = sum(size for _, size in sizes)
    return [
        f"{name},{size},{size / total},{partition['user']},{partition['genres']},{total}"
        for name, size in sizes
    ]
