import numpy as np
import pytest
from lightning.pytorch.callbacks import Callback
from sklearn.linear_model import LogisticRegression

from combiners import WeightedCombiner
from ensembles import SnapshotEnsembleClassifier, SnapshotEnsembleRegressor
from members import CyclicCosineSchedule, NeuralClassifier, NeuralRegressor


class CountFits(Callback):
    def __init__(self):
        self.fits = 0

    def on_fit_start(self, trainer, pl_module):
        self.fits += 1


def test_one_training_run_gives_distinct_members(classification_data):
    X, y = classification_data
    counter = CountFits()
    template = NeuralClassifier(max_epochs=10, callbacks=[counter], random_state=0)
    snap = SnapshotEnsembleClassifier(template, n_snapshots=4).fit(X, y)
    fitted_counter = snap.members_[0].callbacks_[0]
    assert fitted_counter.fits == 1  # the template was trained once, for all four members
    assert counter.fits == 0  # a fit uses a copy: the user's callback is never changed
    assert len(snap.members_) == 4
    predictions = snap.member_predictions(X)
    assert predictions.shape == (4, len(X), 3)
    assert not np.allclose(predictions[0], predictions[-1])
    np.testing.assert_allclose(snap.predict_proba(X), predictions.mean(axis=0))
    assert isinstance(snap.members_[0].scheduler, CyclicCosineSchedule)
    assert [type(c) for c in snap.members_[0].callbacks_] == [CountFits]  # no snapshot store
    assert list(snap.evaluate(X, y).index) == [f"snapshot{i}" for i in range(4)] + ["ensemble"]


def test_same_seed_same_snapshots(classification_data):
    X, y = classification_data
    first = SnapshotEnsembleClassifier(
        NeuralClassifier(max_epochs=6), n_snapshots=2, random_state=3
    )
    again = SnapshotEnsembleClassifier(
        NeuralClassifier(max_epochs=6), n_snapshots=2, random_state=3
    )
    np.testing.assert_array_equal(
        first.fit(X, y).member_predictions(X), again.fit(X, y).member_predictions(X)
    )


@pytest.mark.parametrize("method, n_members", [("fge", 3), ("swa", 1)])
def test_fge_and_swa(classification_data, method, n_members):
    X, y = classification_data
    template = NeuralClassifier("cnn1d", max_epochs=8, random_state=0)
    snap = SnapshotEnsembleClassifier(template, n_snapshots=3, method=method).fit(X, y)
    assert len(snap.members_) == n_members
    assert snap.score(X, y) > 0.6  # chance is 1/3


def test_swa_recomputes_batch_norm_statistics(classification_data):
    X, y = classification_data
    template = NeuralClassifier("cnn1d", max_epochs=6, random_state=0)
    plain = template.fit(X, y)
    swa = SnapshotEnsembleClassifier(template, method="swa").fit(X, y).members_[0]
    bn = "features.1.running_mean"
    assert not np.allclose(
        swa.model_.state_dict()[bn].numpy(), plain.model_.state_dict()[bn].numpy()
    )


def test_learned_combiner_is_fitted_on_held_out_data(classification_data):
    X, y = classification_data
    snap = SnapshotEnsembleClassifier(
        NeuralClassifier(max_epochs=6),
        n_snapshots=3,
        combiner=WeightedCombiner(),
        validation_fraction=0.25,
        random_state=0,
    ).fit(X, y)
    assert snap.ensemble_.oof_predictions_.shape == (3, 60, 3)
    assert snap.combiner_.weights_.sum() == pytest.approx(1.0)


def test_regressor(regression_data):
    X, y = regression_data
    snap = SnapshotEnsembleRegressor(NeuralRegressor(max_epochs=20), n_snapshots=3, random_state=0)
    assert snap.fit(X, y).predict(X).shape == (len(X),)
    assert snap.score(X, y) > 0.8


@pytest.mark.parametrize(
    "params, error, match",
    [
        (
            {"estimator": LogisticRegression()},
            TypeError,
            r"'estimator' parameter of SnapshotEnsembleClassifier must be an instance of "
            r"'members.neural.NeuralClassifier' or None\. Got LogisticRegression\(\) instead",
        ),
        ({"n_snapshots": 0}, ValueError, r"'n_snapshots' .* range \[1, inf\)\. Got 0 instead"),
        ({"method": "ema"}, ValueError, r"'method' .* a str among .*\. Got 'ema' instead"),
        ({"cycle_peak": -1.0}, ValueError, r"'cycle_peak' .* \(0.0, inf\) or None\. Got -1.0"),
        ({"combiner": "mean"}, TypeError, r"'combiner' .* 'combiners.base.BaseCombiner' or None"),
    ],
)
def test_bad_parameters(classification_data, params, error, match):
    X, y = classification_data
    with pytest.raises(error, match=match):
        SnapshotEnsembleClassifier(**params).fit(X, y)
