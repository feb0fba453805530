"""Whole fitted ensembles saved and loaded: predictions identical, no pickle for neural ones."""

import pickle

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge

from combiners import EnsembleSelection, StackingCombiner, WeightedCombiner
from ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    SnapshotEnsembleClassifier,
    SnapshotEnsembleRegressor,
)
from members import NeuralClassifier, NeuralRegressor
from tests.members.test_persistence import assert_no_pickle

NET = {"max_epochs": 3, "module_kwargs": {"hidden": (16,)}}


def test_neural_ensemble_round_trip_has_no_pickle(classification_data, tmp_path):
    X, y = classification_data
    labels = np.array(["low", "mid", "high"])[y]
    ens = EnsembleClassifier(
        [("a", NeuralClassifier("mlp", **NET)), ("b", NeuralClassifier("cnn1d", max_epochs=2))],
        combiner=WeightedCombiner(),
        cv=3,
        calibration="temperature",
        random_state=0,
    ).fit(X, labels)
    ens.save(tmp_path / "ens")
    assert_no_pickle(tmp_path / "ens")
    again = EnsembleClassifier.load(tmp_path / "ens")
    np.testing.assert_allclose(again.predict_proba(X), ens.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(again.predict(X), ens.predict(X))
    np.testing.assert_array_equal(again.combiner_.weights_, ens.combiner_.weights_)
    assert again.calibrator_.temperature_ == ens.calibrator_.temperature_
    assert list(again.named_members_) == ["a", "b"]
    student = ens.distill(X, labels, student=NeuralClassifier("mlp", **NET))
    student.save(tmp_path / "student")
    np.testing.assert_array_equal(
        NeuralClassifier.load(tmp_path / "student").predict_proba(X), student.predict_proba(X)
    )


def test_mixed_ensemble_with_gradient_boosting_round_trips(classification_data, tmp_path):
    X, y = classification_data
    ens = EnsembleClassifier(
        [
            ("net", NeuralClassifier(**NET)),
            ("hgb", HistGradientBoostingClassifier(max_iter=20)),
            ("lr", LogisticRegression(max_iter=500)),
        ],
        combiner=StackingCombiner(LogisticRegression()),
        cv=3,
        random_state=0,
    ).fit(X, y)
    ens.save(tmp_path / "ens")
    again = EnsembleClassifier.load(tmp_path / "ens")  # scikit-learn types are trusted
    np.testing.assert_allclose(again.predict_proba(X), ens.predict_proba(X), atol=1e-6)


def test_regressors_round_trip(regression_data, tmp_path):
    X, y = regression_data
    ens = EnsembleRegressor(
        [
            ("net", NeuralRegressor(**NET)),
            ("hgb", HistGradientBoostingRegressor(max_iter=20)),
            ("ridge", Ridge()),
        ],
        combiner=EnsembleSelection(),
        cv=0.25,
        random_state=0,
    ).fit(X, y)
    ens.save(tmp_path / "ens")
    np.testing.assert_allclose(EnsembleRegressor.load(tmp_path / "ens").predict(X), ens.predict(X))


@pytest.mark.parametrize(
    ("kind", "net"),
    [(SnapshotEnsembleClassifier, NeuralClassifier), (SnapshotEnsembleRegressor, NeuralRegressor)],
)
def test_snapshot_ensembles_round_trip(classification_data, tmp_path, kind, net):
    X, y = classification_data
    snap = kind(net(max_epochs=4), n_snapshots=2, random_state=0).fit(X, y)
    snap.save(tmp_path / "snap")
    assert_no_pickle(tmp_path / "snap")
    again = kind.load(tmp_path / "snap")
    np.testing.assert_array_equal(again.predict(X), snap.predict(X))
    assert len(again.members_) == 2


def test_plain_pickle_keeps_working(classification_data):
    X, y = classification_data
    ens = EnsembleClassifier([("a", NeuralClassifier(**NET))], random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(ens))
    np.testing.assert_array_equal(again.predict_proba(X), ens.predict_proba(X))
