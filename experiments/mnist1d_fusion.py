"""Compare fusion rules on one heterogeneous MNIST-1D pool, without leakage.

The members (mlp, two cnn1d sizes, resnet, gradient boosting) are trained once on the first 3200
training samples; each combiner (and the temperature) is then fitted with ``cv="prefit"`` on the
last 800, which no member saw, and everything is scored on the 1000 test samples::

    python experiments/mnist1d_fusion.py [--output fusion.csv]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier

from combiners import EnsembleSelection, MeanCombiner, StackingCombiner, WeightedCombiner
from ensembles import EnsembleClassifier
from experiments.data import load_mnist1d
from members import NeuralClassifier

N_FIT = 3200


def pool(random_state: int) -> list[tuple[str, Any]]:
    members = [
        ("mlp", NeuralClassifier("mlp")),
        ("cnn1d", NeuralClassifier("cnn1d")),
        ("cnn1d_small", NeuralClassifier("cnn1d", module_kwargs={"channels": (16, 32, 32)})),
        ("resnet", NeuralClassifier("resnet")),
        ("hgb", HistGradientBoostingClassifier()),
    ]
    return [
        (name, clone(est).set_params(random_state=random_state + i))
        for i, (name, est) in enumerate(members)
    ]


COMBINERS = {
    "mean": MeanCombiner,
    "weighted": WeightedCombiner,
    "selection": EnsembleSelection,
    "stacking": StackingCombiner,
}


def fusion_table(random_state: int = 0, verbose: bool = False) -> pd.DataFrame:
    """Train the pool once, fit every combiner with and without temperature, score on test."""
    X_train, y_train, X_test, y_test = load_mnist1d()
    X_fit, y_fit = X_train[:N_FIT], y_train[:N_FIT]
    X_val, y_val = X_train[N_FIT:], y_train[N_FIT:]

    members = []
    for name, estimator in pool(random_state):
        start = time.perf_counter()
        members.append((name, estimator.fit(X_fit, y_fit)))
        if verbose:
            print(f"trained {name} in {time.perf_counter() - start:.1f} s", flush=True)

    rows = {}
    for name, make in COMBINERS.items():
        for calibration in (None, "temperature"):
            ensemble = EnsembleClassifier(
                members, combiner=make(), cv="prefit", calibration=calibration
            ).fit(X_val, y_val)
            table = ensemble.evaluate(X_test, y_test)
            row = table.loc["ensemble"].drop("disagreement").to_dict()
            weights = getattr(ensemble.combiner_, "weights_", None)
            row["weights"] = "" if weights is None else " ".join(f"{w:.2f}" for w in weights)
            if ensemble.calibrator_ is not None:
                row["temperature"] = ensemble.calibrator_.temperature_
            rows[f"{name}{'+T' if calibration else ''}"] = row
    members_table = table.drop(index="ensemble").drop(columns="disagreement")
    return pd.concat([members_table, pd.DataFrame.from_dict(rows, orient="index")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--output", help="also write the table to this CSV file")
    args = parser.parse_args()
    table = fusion_table(args.random_state, verbose=True)
    print("\nmember weights in order: " + ", ".join(name for name, _ in pool(0)))
    print(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep=""))
    if args.output:
        table.to_csv(args.output)


if __name__ == "__main__":
    main()
