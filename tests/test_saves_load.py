"""Saves written by an earlier commit load, and predict what they predicted when saved.

``tests/data/saves_<commit>/`` holds one save of each kind (a classifier and a Gaussian
regressor network, a heterogeneous ensemble with the default fusion and temperature
calibration, a regression ensemble, a snapshot ensemble, a pool search), written by
``tests/data/make_saves.py`` at that commit, with the outputs each gave on 20 rows.
"""

from pathlib import Path

import numpy as np
import pytest

from ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    EnsembleSearchClassifier,
    SnapshotEnsembleClassifier,
)
from members import NeuralClassifier, NeuralRegressor
from tests.data.make_saves import outputs

DATA = Path(__file__).parent / "data"
KINDS = {
    "neural_classifier": NeuralClassifier,
    "gaussian_regressor": NeuralRegressor,
    "ensemble_classifier": EnsembleClassifier,
    "ensemble_regressor": EnsembleRegressor,
    "snapshot_classifier": SnapshotEnsembleClassifier,
    "search_classifier": EnsembleSearchClassifier,
}
FOLDERS = sorted(DATA.glob("saves_*"))


def test_there_are_saves_to_load():
    assert FOLDERS


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda folder: folder.name)
@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_save_from_an_earlier_commit_loads_and_predicts_as_before(folder, name):
    expected = np.load(folder / "expected.npz")
    estimator = KINDS[name].load(folder / name)
    np.testing.assert_allclose(
        outputs(estimator, expected[f"{name}_X"]), expected[name], rtol=1e-6, atol=1e-9
    )
    if name == "gaussian_regressor":
        _, std = estimator.predict(expected[f"{name}_X"], return_std=True)
        assert std.shape == (20,) and (std > 0).all()
