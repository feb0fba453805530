"""Same random_state, same predictions: within a process and from one process to the next."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import make_classification

from combiners import WeightedCombiner
from ensembles import EnsembleClassifier, SnapshotEnsembleClassifier
from members import NeuralClassifier

SCRIPT = """
import numpy as np, sys
sys.path.insert(0, {root!r})
from tests.test_determinism import predictions
np.save({out!r}, predictions())
"""


def predictions() -> np.ndarray:
    """A cross-fitted ensemble of three architectures and a snapshot ensemble, seeded once."""
    X, y = make_classification(
        n_samples=200, n_features=16, n_informative=6, n_classes=3, random_state=0
    )
    members = [
        ("mlp", NeuralClassifier("mlp", max_epochs=3, module_kwargs={"dropout": 0.2})),
        ("cnn", NeuralClassifier("cnn1d", max_epochs=2)),
        ("res", NeuralClassifier("resnet", max_epochs=2)),
    ]
    ens = EnsembleClassifier(members, combiner=WeightedCombiner(), cv=2, random_state=0)
    snap = SnapshotEnsembleClassifier(NeuralClassifier(max_epochs=4), n_snapshots=2, random_state=0)
    return np.stack([ens.fit(X, y).predict_proba(X), snap.fit(X, y).predict_proba(X)])


def test_same_random_state_same_predictions_across_processes(tmp_path):
    here = predictions()
    np.testing.assert_array_equal(predictions(), here)
    out = tmp_path / "other.npy"
    root = str(Path(__file__).parents[1])
    subprocess.run([sys.executable, "-c", SCRIPT.format(root=root, out=str(out))], check=True)
    np.testing.assert_array_equal(np.load(out), here)
