# The entry script: each mini-batch is the rows of one (Store, Brand) partition, as a pandas
# DataFrame; run() returns them with the partition's total income added to each row.
def init():
    print("init: summing income per partition")


def run(mini_batch):
    total_income = mini_batch["INCOME"].sum()
    print(f"{len(mini_batch)} rows, total income {total_income}")
    mini_batch["total_income"] = total_income
    return mini_batch
