"""Predictive uncertainty of ensembles: coverage, NLL, CRPS and out-of-distribution detection.

Three set-ups, each measured in one run (test data only for the tables; every setting was fixed
before the run, none tuned on it)::

    python benchmarks/uncertainty.py heteroscedastic [--seed 0] [--n-train 1000] [--epochs 100]
    python benchmarks/uncertainty.py diabetes [--seed 0] [--epochs 40]
    python benchmarks/uncertainty.py ood [--seed 0] [--epochs 40]

- ``heteroscedastic``: ``y = sin(3x) + noise``, the noise's standard deviation growing from 0.05
  to 0.65 over ``x`` in [-1, 1]; 5 ``NeuralRegressor(loss="gaussian")`` members, variance
  calibrated on 5-fold held-out outputs. 1000 training points by default: the calibration
  learns from the held-out outputs of the training rows, and with 200 of them the coverage it
  reaches has a binomial standard deviation of 2.1 points (``sqrt(0.9 * 0.1 / 200)``), too
  coarse for a 90 % interval to be judged within 3 points; with 1000, 0.95 points. 100 epochs,
  chosen with ``--validation`` (as good as 200 there, at half the time). Reports the 90 %
  interval's coverage before and after calibration, the Gaussian NLL of the ensemble against
  each member's, and the epistemic part inside the training range of ``x`` and outside it
  (``|x|`` in [1.5, 2.5]).
- ``diabetes``: scikit-learn's diabetes data (70/30), a mixed pool of 3 Gaussian networks,
  ``Ridge`` and ``GradientBoostingRegressor`` (point members: epistemic part only), variance
  calibrated. Reports coverage and the NLL and CRPS of the ensemble against the best member.
- ``ood``: MNIST-1D with classes 8 and 9 held out of training; 5 ``cnn1d`` members. The held-out
  classes' test rows are the out-of-distribution inputs, the other test rows the
  in-distribution ones. Reports the AUROC (and AUPR) of the ensemble's mutual information
  (epistemic), of its entropy (total), and of each member's own entropy.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

from combiners import MeanCombiner
from ensembles import EnsembleClassifier, EnsembleRegressor
from ensembles.metrics import gaussian_nll
from experiments.data import load_mnist1d
from members import NeuralClassifier, NeuralRegressor


def heteroscedastic_truth(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The generator's mean and noise standard deviation at ``x`` ``(n, 1)``."""
    return np.sin(3 * x[:, 0]), 0.05 + 0.3 * (np.clip(x[:, 0], -1, 1) + 1)


def heteroscedastic_data(n: int, rng: np.random.Generator, low: float = -1.0, high: float = 1.0):
    x = rng.uniform(low, high, (n, 1))
    mean, std = heteroscedastic_truth(x)
    return x, mean + std * rng.normal(size=n)


def coverage(ens: EnsembleRegressor, X: np.ndarray, y: np.ndarray) -> float:
    lower, upper = ens.predict_interval(X, coverage=0.9)
    return float(np.mean((y >= lower) & (y <= upper)))


def regression(kind: str, seed: int, n_train: int, epochs: int, validation: bool) -> None:
    rng = np.random.default_rng(seed)
    gaussian = NeuralRegressor(loss="gaussian", max_epochs=epochs)
    if kind == "heteroscedastic":
        X, y = heteroscedastic_data(n_train, rng)
        # --validation: a fresh draw of the generator (another seed), the test draw untouched
        X_test, y_test = heteroscedastic_data(
            2000, np.random.default_rng(seed + 1000) if validation else rng
        )
        members = [(f"gaussian{i}", gaussian) for i in range(5)]
    else:
        X_all, y_all = load_diabetes(return_X_y=True)
        X, X_test, y, y_test = train_test_split(X_all, y_all, test_size=0.3, random_state=seed)
        if validation:  # 25 % of the training rows instead of the test set
            X, X_test, y, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
        members = [(f"gaussian{i}", gaussian) for i in range(3)]
        members += [("ridge", Ridge()), ("boosting", GradientBoostingRegressor(random_state=0))]
    start = time.perf_counter()
    raw = EnsembleRegressor(members, combiner=MeanCombiner(), random_state=seed).fit(X, y)
    calibrated = EnsembleRegressor(
        members, combiner=MeanCombiner(), calibration="variance", random_state=seed
    ).fit(X, y)
    seconds = time.perf_counter() - start
    table = calibrated.evaluate(X_test, y_test)
    print(f"\n{kind}, seed {seed} ({seconds:.0f} s to fit both ensembles; test rows {len(y_test)})")
    print("test table (members as trained; the ensemble's variance calibrated):")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"variance scale (calibration): {calibrated.calibrator_.scale_.round(3).tolist()}")
    print(
        f"90 % interval coverage: before calibration {coverage(raw, X_test, y_test):.3f}, "
        f"after {coverage(calibrated, X_test, y_test):.3f}"
    )
    members_only = table.drop(index="ensemble")
    best_nll = members_only["gaussian_nll"].min()
    best_crps = members_only["crps"].min()
    ensemble = table.loc["ensemble"]
    print(
        f"Gaussian NLL: ensemble {ensemble['gaussian_nll']:.4f}, best member {best_nll:.4f} "
        f"({members_only['gaussian_nll'].idxmin()}); uncalibrated ensemble "
        f"{raw.evaluate(X_test, y_test).loc['ensemble', 'gaussian_nll']:.4f}"
    )
    print(
        f"CRPS: ensemble {ensemble['crps']:.4f}, best member {best_crps:.4f} "
        f"({members_only['crps'].idxmin()})"
    )
    if kind == "heteroscedastic":
        mean, std = heteroscedastic_truth(X_test)
        print(f"Gaussian NLL of the true noise model: {gaussian_nll(y_test, mean, std**2):.4f}")
        inside = calibrated.predict_uncertainty(np.linspace(-1, 1, 201)[:, None])
        outside_x = np.r_[np.linspace(-2.5, -1.5, 101), np.linspace(1.5, 2.5, 101)][:, None]
        outside = calibrated.predict_uncertainty(outside_x)
        print(
            "mean epistemic variance: inside [-1, 1] "
            f"{inside['epistemic'].mean():.5f}, outside (|x| in [1.5, 2.5]) "
            f"{outside['epistemic'].mean():.5f} "
            f"(x{outside['epistemic'].mean() / inside['epistemic'].mean():.0f}); "
            f"aleatoric inside {inside['aleatoric'].mean():.4f}"
        )


def ood(seed: int, epochs: int) -> None:
    X, y, X_test, y_test = load_mnist1d()
    known = y < 8
    inside, outside = X_test[y_test < 8], X_test[y_test >= 8]
    members = [(f"cnn1d_{i}", NeuralClassifier("cnn1d", max_epochs=epochs)) for i in range(5)]
    start = time.perf_counter()
    ens = EnsembleClassifier(members, combiner=MeanCombiner(), random_state=seed)
    ens.fit(X[known], y[known])
    seconds = time.perf_counter() - start
    table = ens.evaluate(inside, y_test[y_test < 8], X_ood=outside)
    columns = ["accuracy", "nll", "auroc_total", "auroc_epistemic", "aupr_total", "aupr_epistemic"]
    print(
        f"\nMNIST-1D, classes 8 and 9 out of distribution ({len(inside)} in, {len(outside)} "
        f"out), seed {seed}, {seconds:.0f} s to fit"
    )
    print(table[columns].to_string(float_format=lambda v: f"{v:.4f}"))
    members_only = table.drop(index="ensemble")
    print(
        f"AUROC: ensemble mutual information {table.loc['ensemble', 'auroc_epistemic']:.4f}, "
        f"ensemble entropy {table.loc['ensemble', 'auroc_total']:.4f}, single member entropy "
        f"{members_only['auroc_total'].mean():.4f} (mean of {len(members_only)}; best "
        f"{members_only['auroc_total'].max():.4f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("setup", choices=["heteroscedastic", "diabetes", "ood"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="each network's epochs (heteroscedastic 100, else 40)",
    )
    parser.add_argument(
        "--n-train", type=int, default=1000, help="heteroscedastic: training points"
    )
    parser.add_argument(
        "--validation", action="store_true", help="report on validation data, not the test set"
    )
    args = parser.parse_args()
    epochs = args.epochs or (100 if args.setup == "heteroscedastic" else 40)
    if args.validation:
        print("reporting on validation data (the test set untouched)")
    pd.set_option("display.width", 200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if args.setup == "ood":
            ood(args.seed, epochs)
        else:
            regression(args.setup, args.seed, args.n_train, epochs, args.validation)


if __name__ == "__main__":
    main()
