"""Are two studies' results the same? Column by column, timing columns left out.

For a change that must not change behaviour (issue 35): run the default study before and after
it, on the same machine with the same threads, and compare::

    OMP_NUM_THREADS=2 ensembles-study mnist1d          # in a folder, before the change
    python benchmarks/compare_results.py before/runs/mnist1d/results.csv \\
        after/runs/mnist1d/results.csv

It prints, for each column, whether it is identical and, for a numeric one, the largest
absolute difference.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

TIMING = ("fit_s", "predict_s", "train_s", "seconds")


def compare(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """One row per column of ``before``: ``identical`` and ``max_abs_diff`` (numeric)."""
    if list(before.columns) != list(after.columns) or len(before) != len(after):
        raise ValueError(
            f"the tables differ in shape: {before.shape} against {after.shape}, or in columns"
        )
    rows = []
    for column in before.columns:
        if any(column.endswith(name) for name in TIMING):
            continue
        a, b = before[column], after[column]
        if a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
            x, y = a.to_numpy(float), b.to_numpy(float)
            same = bool(np.array_equal(x, y, equal_nan=True))
            both = ~(np.isnan(x) & np.isnan(y))
            diff = float(np.max(np.abs(x[both] - y[both]), initial=0.0))
        else:
            same, diff = bool(a.astype(str).equals(b.astype(str))), np.nan
        rows.append({"column": column, "identical": same, "max_abs_diff": diff})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args()
    table = compare(pd.read_csv(args.before), pd.read_csv(args.after))
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
