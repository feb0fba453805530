"""Ensembles inside one network on validation splits: why Packed-Ensembles trail the deep
ensemble on MNIST-1D, and what the other estimators score where their defaults were chosen.

    python benchmarks/efficient_validation.py [--source mnist1d | digits28 | digits]
                                              [--seeds 0 1 2] [--width 1.0]
                                              [--systems NAME ...]

The training rows of ``efficient_vs_deep`` (classes 8 and 9 left out, as the study holds them
out) are split 75/25, stratified, once per seed; every system trains on the 75 % and is scored
on the 25 %. The test rows are never read. Every system is built on the study's template
(``cnn1d``, 40 epochs, on MNIST-1D; ``cnn2d``, 20 epochs, on ``digits28``; ``digits``:
scikit-learn's 8x8 digits, an ``mlp`` of 40 epochs), every other option at the library's
default; ``--width`` multiplies the template's widths (``channels`` or ``hidden``):

- ``single``, ``deep (4)``: one template network; the mean of four (seeds apart);
- ``half-width deep (4)``: four networks of half the template's widths trained apart, what the
  default Packed-Ensembles' sub-networks are (M=4, alpha=2);
- ``packed``, ``packed, lr x2``, ``packed, lr x4``: ``PackedEnsembleClassifier`` (M=4,
  alpha=2) at the template's learning rate times 1, 2 (the width rule of the maximal-update
  parametrisation for Adam: half the width, twice the rate) and 4;
- ``single, lr x2``, ``deep (4), lr x2``, ``half-width deep (4), lr x2``: the controls, at
  twice the rate: is a gain the sub-networks' width, or a rate that suits every network?
- ``batchensemble``, ``mimo``, ``mc_dropout``: the other estimators at their defaults, and
  ``batchensemble, lr x2``, ``mimo, lr x2``, ``mc_dropout, lr x2`` at twice the rate (one rate
  for every system of the study, chosen here).

Prints, per system, the validation accuracy and NLL (mean over seeds, then each seed), the NLL
over the deep ensemble's, and the training seconds. Each setting was fixed before the run.
"""

from __future__ import annotations

import argparse
import inspect
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ensembles import (
    BatchEnsembleClassifier,
    MCDropoutClassifier,
    MIMOClassifier,
    PackedEnsembleClassifier,
    metrics,
)
from experiments.data import load_dataset
from members import NeuralClassifier, get_backbone

# the study's templates (experiments/configs/efficient_vs_deep*.yaml), and an mlp on the 8x8
# digits (scikit-learn's) for a third backbone
TEMPLATES = {"mnist1d": ("cnn1d", 40), "digits28": ("cnn2d", 20), "digits": ("mlp", 40)}
HELD_OUT_CLASSES = (8, 9)
DEEP = 4
# a system: (source, seed, the template's width factor) -> the estimators whose mean it is
System = Callable[[str, int, float], list[Any]]


def template(source: str, seed: int = 0, lr: float = 1.0, width: float = 1.0) -> Any:
    """The study's template network, its learning rate times ``lr`` and its widths times
    ``width`` (0.5: a default Packed-Ensembles sub-network)."""
    module, epochs = TEMPLATES[source]
    base = NeuralClassifier(module, max_epochs=epochs, random_state=seed)
    name = "hidden" if module == "mlp" else "channels"
    widths = inspect.signature(get_backbone(module)).parameters[name].default
    return base.set_params(
        lr=base.lr * lr, module_kwargs={name: tuple(max(1, round(w * width)) for w in widths)}
    )


def networks(count: int, lr: float = 1.0, width: float = 1.0) -> System:
    """``count`` template networks, seeds apart: their probabilities are averaged."""
    return lambda source, seed, scale: [
        template(source, 100 * seed + k, lr=lr, width=width * scale) for k in range(count)
    ]


def one(kind: Any, lr: float = 1.0) -> System:
    """One estimator of ``kind`` on the template, at its learning rate times ``lr``."""
    return lambda source, seed, width: [
        kind(template(source, lr=lr, width=width), random_state=seed)
    ]


SYSTEMS: dict[str, System] = {
    "single": networks(1),
    "deep (4)": networks(DEEP),
    "half-width deep (4)": networks(DEEP, width=0.5),
    "packed": one(PackedEnsembleClassifier),
    "packed, lr x2": one(PackedEnsembleClassifier, lr=2),
    "packed, lr x4": one(PackedEnsembleClassifier, lr=4),
    "single, lr x2": networks(1, lr=2),
    "deep (4), lr x2": networks(DEEP, lr=2),
    "half-width deep (4), lr x2": networks(DEEP, width=0.5, lr=2),
    "batchensemble": one(BatchEnsembleClassifier),
    "mimo": one(MIMOClassifier),
    "mc_dropout": one(MCDropoutClassifier),
    "batchensemble, lr x2": one(BatchEnsembleClassifier, lr=2),
    "mimo, lr x2": one(MIMOClassifier, lr=2),
    "mc_dropout, lr x2": one(MCDropoutClassifier, lr=2),
}


def validation_rows(data: Any, seed: int) -> tuple[np.ndarray, ...]:
    """``X_fit, y_fit, X_val, y_val``: the study's training rows of ``data`` (a loaded
    source), 75/25, stratified."""
    keep = ~np.isin(data.y_train, HELD_OUT_CLASSES)
    X_fit, X_val, y_fit, y_val = train_test_split(
        data.X_train[keep],
        data.y_train[keep],
        test_size=0.25,
        stratify=data.y_train[keep],
        random_state=seed,
    )
    return X_fit, y_fit, X_val, y_val


def main(source: str, seeds: list[int], systems: list[str], width: float) -> pd.DataFrame:
    rows = []
    data = load_dataset(source)  # once: each seed splits the same rows its own way
    for seed in seeds:
        X_fit, y_fit, X_val, y_val = validation_rows(data, seed)
        classes = np.unique(y_fit)
        # a network two systems share (the single one is the deep ensemble's first) trains once;
        # each system is charged its training seconds
        trained: dict[str, tuple[np.ndarray, float]] = {}
        for name in systems:
            probas, seconds = [], 0.0
            for estimator in SYSTEMS[name](source, seed, width):
                key = repr(estimator)
                if key not in trained:
                    start = time.perf_counter()
                    estimator.fit(X_fit, y_fit)
                    trained[key] = estimator.predict_proba(X_val), time.perf_counter() - start
                probas.append(trained[key][0])
                seconds += trained[key][1]
            proba = np.mean(probas, axis=0)
            report = metrics.classification_report(np.searchsorted(classes, y_val), proba)
            rows.append({"system": name, "seed": seed, **report, "train_s": seconds})
            print(f"{name} seed {seed}: nll {report['nll']:.4f} ({seconds:.0f} s)", flush=True)
    runs = pd.DataFrame(rows)
    table = runs.groupby("system", sort=False)[["accuracy", "nll", "train_s"]].mean()
    per_seed = runs.pivot(index="system", columns="seed", values="nll")
    table["nll per seed"] = [
        " / ".join(f"{v:.4f}" for v in per_seed.loc[name]) for name in table.index
    ]
    if "deep (4)" in table.index:
        table["nll / deep (4)'s"] = table["nll"] / table.loc["deep (4)", "nll"]
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=sorted(TEMPLATES), default="mnist1d")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--width", type=float, default=1.0, help="the template's widths times")
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = main(args.source, args.seeds, args.systems, args.width)
    print(table.to_markdown(floatfmt=".4f"))
