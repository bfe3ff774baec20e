#!/usr/bin/env python3
"""Where a soaked SQLite database's bytes are, per check: each kind of row with its indexes,
from SQLite's dbstat (python3's sqlite3 has it; hostler's bundled SQLite does not).

Run: python3 tests/bench/where_bytes.py DB CHECKS   (DB kept by HOSTLER_SOAK_KEEP=DB)
"""
import sqlite3
import sys

KINDS = [
    ("runs", ("runs", "run_keys")),
    ("transcripts", ("run_transcripts",)),
    ("hourly trends", ("perf_days", "perf_trends")),
    ("raw points", ("perf_raw", "perf_points")),
    ("notifications", ("notifications",)),
]


def kind(name):
    for label, tables in KINDS:
        if any(name == t or name.startswith(t + "_") for t in tables):
            return label
    return "the rest"


def main():
    db, checks = sys.argv[1], int(sys.argv[2])
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    sizes = {}
    for name, size in c.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        sizes[kind(name)] = sizes.get(kind(name), 0) + size
    (free,) = c.execute("PRAGMA freelist_count").fetchone()
    (page,) = c.execute("PRAGMA page_size").fetchone()
    sizes["free pages"] = free * page
    total = sum(sizes.values())
    for label in [k for k, _ in KINDS] + ["the rest", "free pages"]:
        b = sizes.get(label, 0)
        print(f"{label:>14}: {b / checks / 1e3:7.1f} KB per check ({100 * b / total:4.1f}%)")
    print(f"{'all':>14}: {total / checks / 1e3:7.1f} KB per check, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
