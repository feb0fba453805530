"""Snapshot ensembles against the single model at the same training budget, on MNIST-1D.

For each seed: ``NeuralClassifier("cnn1d", max_epochs=E)`` alone, and the same template
trained once as a snapshot ensemble (5 cycles), with fast geometric ensembling, and with
stochastic weight averaging; test accuracy, NLL, Brier score, ECE and fit time relative to
the single model::

    python experiments/mnist1d_snapshot.py [--seeds 0 1 2] [--epochs 100]

``--peaks`` adds one snapshot and one FGE row per cycle peak, and ``--validation`` scores on
20 % of the training set held out (stratified, fixed split) instead of the test set: the way
the default peaks are checked without looking at test data::

    python experiments/mnist1d_snapshot.py --validation --peaks 1 2 6 10 --seeds 0 1 2 3 4 5
    python experiments/mnist1d_snapshot.py --validation --peaks 1 2 6 --data digits --module mlp
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from ensembles import SnapshotEnsembleClassifier
from ensembles.metrics import classification_report
from experiments.data import load_dataset
from members import NeuralClassifier


def candidates(template: NeuralClassifier, peaks: list[float] | None) -> dict[str, Any]:
    """The single model and its snapshot, FGE and SWA ensembles (one per peak if given)."""
    found: dict[str, Any] = {"single": template}
    options: list[float | None] = list(peaks) if peaks else [None]
    for method in ("snapshot", "fge"):
        for peak in options:
            name = method if peak is None else f"{method}@{peak:g}"
            found[name] = SnapshotEnsembleClassifier(
                template, n_snapshots=5, method=method, cycle_peak=peak
            )
    found["swa"] = SnapshotEnsembleClassifier(template, method="swa")
    return found


def split(data: str, validation: bool) -> tuple[Any, Any, Any, Any]:
    """``X_train, y_train, X_eval, y_eval``: the test set, or 20 % of the training set."""
    dataset = load_dataset(data)
    if not validation:
        return dataset.X_train, dataset.y_train, dataset.X_test, dataset.y_test
    X_train, X_eval, y_train, y_eval = train_test_split(
        dataset.X_train, dataset.y_train, test_size=0.2, stratify=dataset.y_train, random_state=123
    )
    return X_train, y_train, X_eval, y_eval


def compare(
    seed: int,
    epochs: int,
    *,
    data: str = "mnist1d",
    module: str = "cnn1d",
    validation: bool = False,
    peaks: list[float] | None = None,
) -> pd.DataFrame:
    X_train, y_train, X_eval, y_eval = split(data, validation)
    template = NeuralClassifier(module, max_epochs=epochs, random_state=seed)
    rows = {}
    for name, estimator in candidates(template, peaks).items():
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        probabilities = estimator.predict_proba(X_eval)
        rows[name] = classification_report(y_eval, probabilities)
        rows[name]["fit_s"] = seconds
    table = pd.DataFrame.from_dict(rows, orient="index")
    table["time_ratio"] = table["fit_s"] / table.loc["single", "fit_s"]
    table.insert(0, "seed", seed)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--data", default="mnist1d", help="mnist1d or a bundled set (digits, …)")
    parser.add_argument("--module", default="cnn1d", help="the template's backbone")
    parser.add_argument(
        "--validation", action="store_true", help="score on 20 %% of the training set"
    )
    parser.add_argument("--peaks", type=float, nargs="+", help="cycle peaks to compare")
    parser.add_argument("--output", help="also write the table to this CSV file")
    args = parser.parse_args()
    tables = []
    for seed in args.seeds:
        tables.append(
            compare(
                seed,
                args.epochs,
                data=args.data,
                module=args.module,
                validation=args.validation,
                peaks=args.peaks,
            )
        )
        print(tables[-1].to_string(float_format=lambda v: f"{v:.4f}"), flush=True)
    table = pd.concat(tables)
    summary = table.groupby(level=0, sort=False).mean(numeric_only=True).drop(columns="seed")
    scored_on = "validation split" if args.validation else "test set"
    print(
        f"\nmean over seeds {args.seeds}, {args.data} {scored_on}, {args.module}, "
        f"{args.epochs} epochs:"
    )
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.output:
        table.to_csv(args.output)


if __name__ == "__main__":
    main()
