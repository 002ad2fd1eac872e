"""Export Orders: stands in for a shop system's nightly export.

Loads the shipped orders.csv (40 orders) into a SQLite database ``shop.db`` in --out, keeps the
CSV beside it, and writes a ``_SUCCESS`` marker, as many export jobs do. Standard library only.
"""

import argparse
import csv
import shutil
import sqlite3
from pathlib import Path

from scheduler.runtime import Run

parser = argparse.ArgumentParser()
parser.add_argument("--orders", type=Path, required=True, help="the orders CSV to export")
parser.add_argument("--out", type=Path, required=True, help="output folder")
args = parser.parse_args()

with args.orders.open(newline="") as handle:
    rows = [
        (int(r["order_id"]), r["ordered_on"], r["region"], r["product"], float(r["amount"]))
        for r in csv.DictReader(handle)
    ]

args.out.mkdir(parents=True, exist_ok=True)
with sqlite3.connect(args.out / "shop.db") as db:
    db.execute(
        "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, ordered_on TEXT NOT NULL,"
        " region TEXT NOT NULL, product TEXT NOT NULL, amount REAL NOT NULL)"
    )
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", rows)
db.close()
shutil.copyfile(args.orders, args.out / "orders.csv")
(args.out / "_SUCCESS").write_text("")

print(f"exported {len(rows)} orders to {args.out / 'shop.db'}")
Run.get_context().log("orders_exported", len(rows))
