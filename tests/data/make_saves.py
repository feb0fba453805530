"""Write the saves of ``tests/test_saves_load.py``: one fitted estimator of each saved kind,
and the predictions it made, so that a later commit proves it still loads them.

Run from the repository root, at the commit whose files the test should hold::

    python tests/data/make_saves.py tests/data/saves_<commit>
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression

from combiners import EnsembleSelection
from ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    EnsembleSearchClassifier,
    SnapshotEnsembleClassifier,
)
from members import NeuralClassifier, NeuralRegressor

NET = {"max_epochs": 2, "module_kwargs": {"hidden": (8,)}, "random_state": 0}


def estimators() -> dict[str, tuple[object, np.ndarray, np.ndarray]]:
    """Each saved kind, unfitted, with its training data."""
    X, y = make_classification(300, 6, n_informative=4, n_classes=3, random_state=0)
    Xr, yr = make_regression(300, 6, noise=1.0, random_state=0)
    labels = np.array(["a", "b", "c"])[y]
    return {
        "neural_classifier": (NeuralClassifier("mlp", **NET), X, labels),
        "gaussian_regressor": (NeuralRegressor("mlp", loss="gaussian", **NET), Xr, yr),
        "ensemble_classifier": (
            EnsembleClassifier(
                [
                    ("mlp", NeuralClassifier("mlp", **NET)),
                    (
                        "cnn",
                        NeuralClassifier(
                            "cnn1d", max_epochs=2, module_kwargs={"channels": (4,)}, random_state=1
                        ),
                    ),
                    ("lr", LogisticRegression(max_iter=200)),
                ],
                calibration="temperature",
                random_state=0,
            ),
            X,
            labels,
        ),
        "ensemble_regressor": (
            EnsembleRegressor(
                [("a", NeuralRegressor("mlp", **NET)), ("b", NeuralRegressor("mlp", **NET))],
                random_state=0,
            ),
            Xr,
            yr,
        ),
        "snapshot_classifier": (
            SnapshotEnsembleClassifier(
                NeuralClassifier(max_epochs=4, module_kwargs={"hidden": (8,)}),
                n_snapshots=2,
                random_state=0,
            ),
            X,
            labels,
        ),
        "search_classifier": (
            EnsembleSearchClassifier(
                NeuralClassifier(max_epochs=2, module_kwargs={"hidden": (8,)}),
                space={"lr": [1e-3, 3e-3]},
                n_trials=2,
                ensemble_size=2,
                selection=EnsembleSelection(n_iter=1, n_init=1),
                random_state=0,
            ),
            X,
            labels,
        ),
    }


def outputs(estimator: object, X: np.ndarray) -> np.ndarray:
    method = getattr(estimator, "predict_proba", None) or estimator.predict  # type: ignore[attr-defined]
    return np.asarray(method(X), dtype=np.float64)


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=False)
    expected = {}
    for name, (estimator, X, y) in estimators().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(X, y)  # type: ignore[attr-defined]
        estimator.save(folder / name)  # type: ignore[attr-defined]
        expected[name] = outputs(estimator, X[:20])
        expected[f"{name}_X"] = X[:20]
    np.savez(folder / "expected.npz", **expected)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
