"""Snapshot ensembles against the single model at the same training budget, on MNIST-1D.

For each seed: ``NeuralClassifier("cnn1d", max_epochs=E)`` alone, and the same template
trained once as a snapshot ensemble (5 cycles), with fast geometric ensembling, and with
stochastic weight averaging; test accuracy, NLL, ECE and fit time relative to the single
model::

    python experiments/mnist1d_snapshot.py [--seeds 0 1 2] [--epochs 100]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from ensembles import SnapshotEnsembleClassifier
from ensembles.datasets import load_mnist1d
from ensembles.metrics import classification_report
from members import NeuralClassifier


def compare(seed: int, epochs: int, n_snapshots: int = 5) -> pd.DataFrame:
    X_train, y_train, X_test, y_test = load_mnist1d()
    template = NeuralClassifier("cnn1d", max_epochs=epochs, random_state=seed)
    candidates = {
        "single": template,
        "snapshot": SnapshotEnsembleClassifier(template, n_snapshots=n_snapshots),
        "fge": SnapshotEnsembleClassifier(template, n_snapshots=n_snapshots, method="fge"),
        "swa": SnapshotEnsembleClassifier(template, method="swa"),
    }
    rows = {}
    for name, estimator in candidates.items():
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        rows[name] = classification_report(y_test, estimator.predict_proba(X_test))
        rows[name]["fit_s"] = seconds
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["time_ratio"] = table["fit_s"] / table.loc["single", "fit_s"]
    table.insert(0, "seed", seed)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--output", help="also write the table to this CSV file")
    args = parser.parse_args()
    tables = []
    for seed in args.seeds:
        tables.append(compare(seed, args.epochs))
        print(tables[-1].to_string(float_format=lambda v: f"{v:.4f}"), flush=True)
    table = pd.concat(tables)
    summary = table.groupby(level=0, sort=False).mean(numeric_only=True).drop(columns="seed")
    print(f"\nmean over seeds {args.seeds}, {args.epochs} epochs:")
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.output:
        table.to_csv(args.output)


if __name__ == "__main__":
    main()
