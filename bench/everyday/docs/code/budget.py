"""Sort the bank's CSV export into categories and print what went where this month."""

import csv
import sys
from collections import defaultdict

RULES = {
    "groceries": ("LIDL", "ALDI", "MARKET"),
    "transport": ("RAIL", "FUEL", "PARKING"),
    "eating out": ("CAFE", "PIZZ", "BAR "),
    "bills": ("ENERGY", "WATER CO", "TELECOM"),
}


def category(description: str) -> str:
    upper = description.upper()
    for name, keys in RULES.items():
        if any(k in upper for k in keys):
            return name
    return "other"


totals: dict[str, float] = defaultdict(float)
with open(sys.argv[1], newline="") as handle:
    for row in csv.DictReader(handle):
        totals[category(row["Description"])] += -float(row["Amount"])
for name, amount in sorted(totals.items(), key=lambda kv: -kv[1]):
    print(f"{name:<12} {amount:>9.2f}")
