"""Distil a 5-seed MLP regression ensemble into one MLP, on diabetes and a noisy synthetic set.

For each data set and seed: the teacher is 5 default ``NeuralRegressor`` members (mean); the
student comes from ``ensemble.distill(X, y)`` with the library's defaults (function matching:
the student matches the ensemble's mean prediction on mixup views of the training rows).
Beside them, an MLP trained alone on the labels with the members' budget and one with the
student's budget. Test RMSE, on a split never used for training or for any choice::

    python experiments/regression_distill.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes, make_regression
from sklearn.model_selection import train_test_split

from ensembles import DistillationReport, EnsembleRegressor
from members import NeuralRegressor

N_MEMBERS = 5


def datasets(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    X_syn, y_syn = make_regression(
        n_samples=1000, n_features=20, n_informative=10, noise=20.0, random_state=seed
    )
    return {"diabetes": load_diabetes(return_X_y=True), "make_regression": (X_syn, y_syn)}


def run(name: str, seed: int, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=seed)
    members = [(f"mlp_{i}", NeuralRegressor(random_state=10 * seed + i)) for i in range(N_MEMBERS)]
    start = time.perf_counter()
    ensemble = EnsembleRegressor(members).fit(X_train, y_train)
    members_s = time.perf_counter() - start
    start = time.perf_counter()
    student = ensemble.distill(X_train, y_train, random_state=seed)
    student_s = time.perf_counter() - start
    alone = NeuralRegressor(random_state=seed).fit(X_train, y_train)
    long_alone = NeuralRegressor(max_epochs=student.max_epochs, random_state=seed).fit(
        X_train, y_train
    )
    table = DistillationReport.compare(
        ensemble,
        student,
        X_test,
        y_test,
        baselines={"alone": alone, "alone, student's budget": long_alone},
        train_seconds={"ensemble": members_s, "student": student_s},
    ).table
    return {
        "data": name,
        "seed": seed,
        "ensemble": table.loc["ensemble", "rmse"],
        "alone": table.loc["alone", "rmse"],
        "alone, student's budget": table.loc["alone, student's budget", "rmse"],
        "student": table.loc["student", "rmse"],
        "gain kept": table.loc["student", "gain_kept"],
        "cost": table.loc["student", "cost"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        for name, (X, y) in datasets(seed).items():
            rows.append(run(name, seed, X, y))
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows).set_index(["data", "seed"])
    table["student <= better alone"] = table["student"] <= table[
        ["alone", "alone, student's budget"]
    ].min(axis=1)
    print("\ntest RMSE:")
    print(table.to_string(float_format="{:.4f}".format))


if __name__ == "__main__":
    main()
