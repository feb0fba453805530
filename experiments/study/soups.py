"""The study's ``soup`` step: fusion in weight space against fusion of outputs and distillation.

For the pool's fine-tunes of one network (``soup.members``: entries with ``fine_tune``), the
step scores on the test rows: the best ingredient (chosen on the validation rows), their output
ensemble (the plain mean of their probabilities), the greedy soup (ingredients chosen on the
validation rows) and the uniform soup, each with batch-norm statistics recomputed on the
training rows; for ``soup.independent`` (networks trained from different seeds), their naive
average and their averages aligned by weight matching and by activation matching (on the
training rows); and the student of the ``distill`` step when there
is one. Columns: accuracy, NLL, ECE, the mean NLL under the ``shift`` corruptions, the seconds
to predict the test rows, and the training beyond the pool (a soup's: building it; the
student's: its training) in seconds and as a share of the pool's training time (the
ingredients' and the network they start from). ``soup_curve.csv`` and
``plots/interpolation.png``: the test NLL along the line between the first two independent
networks, naive against each alignment.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ensembles import loss_barrier, metrics, soup
from experiments.study import plots

# how the independent networks are averaged: the row's name for each ``align``
ALIGNED = {
    None: "naive",
    "weights": "weight-matched",
    "activations": "activation-matched",
}

COLUMNS = [
    "accuracy",
    "nll",
    "ece",
    "shift_nll",
    "predict_s",
    "extra_train_s",
    "extra_x",
    "ingredients",
]


def _scores(
    proba_of: Any,
    X_test: np.ndarray,
    y_test: np.ndarray,
    shifted: list[tuple[np.ndarray, np.ndarray]],
    test: tuple[np.ndarray, float] | None = None,
) -> dict[str, float]:
    """Test accuracy, NLL, ECE, the seconds ``proba_of`` took on the test rows (or ``test``:
    its probabilities and seconds there, known already), and the mean NLL over the corrupted
    sets."""
    if test is None:
        start = time.perf_counter()
        proba = proba_of(X_test)
        seconds = time.perf_counter() - start
    else:
        proba, seconds = test
    report = metrics.classification_report(y_test, proba)
    row = {k: report[k] for k in ("accuracy", "nll", "ece")} | {"predict_s": seconds}
    if shifted:
        row["shift_nll"] = float(np.mean([metrics.nll(y, proba_of(X)) for X, y in shifted]))
    return row


def soup_rows(
    ingredients: list[tuple[str, Any]],
    outputs: tuple[np.ndarray, np.ndarray, list[float]],
    pool_seconds: float,
    independent: list[Any],
    student: tuple[Any, float] | None,
    X_fit: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    shifted: list[tuple[np.ndarray, np.ndarray]],
    steps: int,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The table (one row per system) and the interpolation curves (or ``None``).

    ``ingredients`` are ``(name, fitted network)`` and ``outputs`` their probabilities on the
    validation and the test rows and their seconds on the test rows (the pool's, computed
    once); ``y_val`` holds labels, ``y_test`` and the ``shifted`` sets' targets class indices
    of the networks' ``classes_``; ``student`` is a fitted estimator laid out on those classes
    and its training seconds.
    """
    rows: dict[str, dict[str, Any]] = {}
    networks = [network for _, network in ingredients]
    classes = networks[0].classes_
    validation, test, seconds = outputs
    y_val_t = metrics.encode_labels(y_val, classes)
    best = int(np.argmin([metrics.nll(y_val_t, proba) for proba in validation]))
    rows[f"best ingredient ({ingredients[best][0]})"] = _scores(
        networks[best].predict_proba, X_test, y_test, shifted, (test[best], seconds[best])
    ) | {"extra_train_s": 0.0}

    def mean_proba(X: np.ndarray) -> np.ndarray:
        return np.mean([network.predict_proba(X) for network in networks], axis=0)

    rows[f"output ensemble (mean of {len(networks)})"] = _scores(
        mean_proba, X_test, y_test, shifted, (test.mean(axis=0), float(sum(seconds)))
    ) | {"extra_train_s": 0.0, "ingredients": len(networks)}
    for method in ("greedy", "uniform"):
        start = time.perf_counter()
        held_out = (X_val, y_val) if method == "greedy" else (None, None)
        result = soup(ingredients, *held_out, method=method, X_train=X_fit)
        built = time.perf_counter() - start
        rows[f"{method} soup"] = _scores(result.predict_proba, X_test, y_test, shifted) | {
            "extra_train_s": built,
            "ingredients": len(result.ingredients_),
        }
    curves = None
    if independent:
        for align, label in ALIGNED.items():
            start = time.perf_counter()
            result = soup(independent, method="uniform", align=align, X_train=X_fit)
            built = time.perf_counter() - start
            name = f"{label} average of {len(independent)} independent"
            rows[name] = _scores(result.predict_proba, X_test, y_test, shifted) | {
                "extra_train_s": built,
                "ingredients": len(independent),
            }
        labels = classes[y_test]
        curves = pd.DataFrame(
            [
                {"path": label, "t": t, "nll": loss}
                for align, label in ALIGNED.items()
                for t, loss in zip(
                    *_curve(independent[0], independent[1], X_test, labels, steps, align, X_fit),
                    strict=True,
                )
            ]
        )
    if student is not None:
        estimator, trained_s = student
        rows["student (distilled)"] = _scores(estimator.predict_proba, X_test, y_test, shifted) | {
            "extra_train_s": trained_s
        }
    table = pd.DataFrame(rows).T
    table["extra_x"] = table["extra_train_s"].astype(float) / pool_seconds
    return table[[column for column in COLUMNS if column in table]], curves


def _curve(
    a: Any, b: Any, X: np.ndarray, y: np.ndarray, steps: int, align: str | None, X_fit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    curve = loss_barrier(a, b, X, y, steps=steps, align=align, X_train=X_fit)
    return curve.t, curve.loss


def plot_curves(curves: pd.DataFrame, path: Path) -> Path:
    """The test NLL along the line between two independent networks, naive against aligned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(5.5, 3.8))
    for name, part in curves.groupby("path", sort=False):
        axis.plot(part["t"], part["nll"], marker="o", label=str(name))
    axis.set_xlabel("interpolation t (0: first network, 1: second)")
    axis.set_ylabel("test NLL")
    axis.set_title("Between two independently trained networks")
    axis.legend()
    axis.grid(alpha=0.3)
    return plots.save_figure(fig, path)


def lines(table: pd.DataFrame, pool_seconds: float) -> list[str]:
    """``summary.md``'s section for the soups."""
    return [
        "## Weight-space fusion (soups) against output fusion and distillation",
        "",
        table.to_markdown(floatfmt=".4f"),
        "",
        f"`extra_x`: training beyond the pool as a share of the pool's {pool_seconds:.1f} s "
        "(the ingredients and the network they start from). The table: `soup.csv`; the "
        "interpolation curve: `soup_curve.csv`.",
        "",
    ]
