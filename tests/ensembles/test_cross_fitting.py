"""Learned combiners never see predictions the members trained on (issue 3)."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from combiners import MeanCombiner, StackingCombiner, WeightedCombiner
from ensembles import EnsembleClassifier, EnsembleRegressor
from ensembles.metrics import nll
from members import NeuralRegressor

FITS: list[int] = []


class CountingLR(LogisticRegression):
    """Records the number of rows of every fit."""

    def fit(self, X, y):
        FITS.append(len(X))
        return super().fit(X, y)


@pytest.fixture
def counted(classification_data):
    FITS.clear()
    return classification_data


def _pool():
    return [("a", CountingLR(max_iter=500)), ("b", CountingLR(C=0.01, max_iter=500))]


def test_fixed_rule_trains_each_member_once(counted):
    X, y = counted
    ens = EnsembleClassifier(_pool(), combiner=MeanCombiner()).fit(X, y)
    assert FITS == [len(X)] * 2
    assert not hasattr(ens, "oof_predictions_")


def test_a_fixed_rule_with_an_explicit_cv_gets_held_out_outputs_for_the_guard(counted):
    X, y = counted
    ens = EnsembleClassifier(_pool(), combiner=MeanCombiner(), cv=5).fit(X, y)
    assert FITS == [192] * 10 + [240] * 2  # 5 folds, then the refit
    assert ens.oof_predictions_.shape == (2, 240, 3)
    assert list(ens.held_out_scores_) == ["a", "b", "ensemble"]


def test_kfold_cross_fitting_trains_k_plus_one_times_and_exposes_oof(counted):
    X, y = counted
    folds = StratifiedKFold(4, shuffle=True, random_state=0)
    ens = EnsembleClassifier(_pool(), combiner=WeightedCombiner(), cv=folds).fit(X, y)
    assert len(FITS) == 2 * (4 + 1)
    assert FITS[-2:] == [len(X)] * 2  # the final members see all the data
    assert ens.oof_predictions_.shape == (2, len(X), 3)
    np.testing.assert_array_equal(ens.oof_index_, np.arange(len(X)))
    # the out-of-fold outputs are exactly what cross_val_predict gives with the same folds
    expected = cross_val_predict(
        LogisticRegression(max_iter=500), X, y, cv=folds, method="predict_proba"
    )
    np.testing.assert_allclose(ens.oof_predictions_[0], expected)


def test_default_cv_for_learned_combiner_is_five_folds(counted):
    X, y = counted
    EnsembleClassifier(_pool(), combiner=StackingCombiner()).fit(X, y)
    assert len(FITS) == 2 * 6


def test_held_out_fraction_trains_once_without_refit(counted):
    X, y = counted
    ens = EnsembleClassifier(_pool(), combiner=WeightedCombiner(), cv=0.25, random_state=0)
    ens.fit(X, y)
    assert FITS == [len(X) - 60] * 2
    assert ens.oof_predictions_.shape == (2, 60, 3)
    assert len(np.intersect1d(ens.oof_index_, np.arange(len(X)))) == 60
    held = ens.oof_index_
    np.testing.assert_allclose(ens.oof_predictions_[0], ens.members_[0].predict_proba(X[held]))


def test_int_cv_is_shuffled_stratified_and_reproducible(counted):
    X, y = counted
    first = EnsembleClassifier(_pool(), combiner=WeightedCombiner(), cv=3, random_state=0)
    again = EnsembleClassifier(_pool(), combiner=WeightedCombiner(), cv=3, random_state=0)
    np.testing.assert_array_equal(
        first.fit(X, y).oof_predictions_, again.fit(X, y).oof_predictions_
    )
    unshuffled = EnsembleClassifier(_pool(), combiner=WeightedCombiner(), cv=KFold(3)).fit(X, y)
    assert not np.allclose(first.oof_predictions_, unshuffled.oof_predictions_)


def test_prefit_uses_members_as_they_are(classification_data):
    X, y = classification_data
    first, second = X[:160], X[160:]
    members = [
        ("lr", LogisticRegression(max_iter=500).fit(first, y[:160])),
        ("nb", GaussianNB().fit(first, y[:160])),
    ]
    ens = EnsembleClassifier(members, combiner=StackingCombiner(), cv="prefit").fit(second, y[160:])
    assert ens.members_[0] is members[0][1]
    assert ens.oof_predictions_.shape == (2, 80, 3)
    assert ens.predict_proba(X).shape == (len(X), 3)


def test_prefit_members_with_string_labels(classification_data):
    X, y = classification_data
    labels = np.array(["x", "y", "z"])[y]
    members = [("lr", LogisticRegression(max_iter=500).fit(X, labels))]
    ens = EnsembleClassifier(members, combiner=WeightedCombiner(), cv="prefit").fit(X, labels)
    assert set(ens.predict(X)) <= {"x", "y", "z"}


def test_prefit_needs_fitted_members(classification_data):
    X, y = classification_data
    ens = EnsembleClassifier([("lr", LogisticRegression())], cv="prefit")
    with pytest.raises(NotFittedError, match=r"member 'lr' is not fitted"):
        ens.fit(X, y)


def test_temperature_calibration_keeps_accuracy(classification_data):
    X, y = classification_data
    plain = EnsembleClassifier(_pool(), random_state=0).fit(X, y)
    calibrated = EnsembleClassifier(_pool(), calibration="temperature", random_state=0).fit(X, y)
    assert calibrated.calibrator_.temperature_ > 0
    np.testing.assert_array_equal(calibrated.predict(X), plain.predict(X))
    assert plain.calibrator_ is None


CV_MESSAGE = (
    r"The 'cv' parameter of EnsembleClassifier must be an int in the range \[2, inf\), a float "
    r"in the range \(0.0, 1.0\), an object implementing 'split' and 'get_n_splits', an "
    r"instance of 'list', a str among {'prefit'} or None\. "
)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"cv": 1}, ValueError, CV_MESSAGE + "Got 1 instead"),
        ({"cv": 1.5}, ValueError, CV_MESSAGE + r"Got 1\.5 instead"),
        ({"cv": "all"}, ValueError, CV_MESSAGE + "Got 'all' instead"),
        ({"cv": True}, ValueError, CV_MESSAGE + "Got True instead"),
        ({"calibration": "platt"}, ValueError, r"'calibration' .* among {'temperature'} or None"),
    ],
)
def test_bad_cv_and_calibration(classification_data, params, error, match):
    X, y = classification_data
    with pytest.raises(error, match=match):
        EnsembleClassifier(_pool(), **params).fit(X, y)


def test_memorising_member_does_not_leak_into_learned_weights():
    """Acceptance 2: a tree that memorises the training set gets little weight."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    pool = [
        ("lr", LogisticRegression(max_iter=1000)),
        ("nb", GaussianNB()),
        ("tree", DecisionTreeClassifier(random_state=0)),
    ]
    results = {}
    for name, combiner in [
        ("mean", MeanCombiner()),
        ("weighted", WeightedCombiner()),
        ("stacking", StackingCombiner()),
    ]:
        ens = EnsembleClassifier(pool, combiner=combiner, random_state=0).fit(X_train, y_train)
        results[name] = (nll(y_test, ens.predict_proba(X_test)), ens)
    print({name: round(value, 4) for name, (value, _) in results.items()})
    assert results["weighted"][0] <= results["mean"][0]
    assert results["stacking"][0] <= results["mean"][0]
    assert results["weighted"][1].combiner_.weights_[2] <= 1 / 3
    # stacking: the tree's share of the meta-learner's absolute coefficients
    coefficients = np.abs(results["stacking"][1].combiner_.final_estimator_.coef_).ravel()
    assert coefficients[2] / coefficients.sum() <= 1 / 3


def test_diabetes_learned_fusion_matches_mean():
    """Acceptance 4: weighted and stacking RMSE within 2 % of the plain mean (or better)."""
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    pool = [
        ("mlp", NeuralRegressor("mlp")),
        ("ridge", Ridge()),
        ("knn", KNeighborsRegressor()),
        ("hgb", HistGradientBoostingRegressor(random_state=0)),
    ]
    rmse = {}
    for name, combiner in [
        ("mean", MeanCombiner()),
        ("weighted", WeightedCombiner()),
        ("stacking", StackingCombiner()),
    ]:
        ens = EnsembleRegressor(pool, combiner=combiner, random_state=0).fit(X_train, y_train)
        rmse[name] = float(np.sqrt(np.mean((ens.predict(X_test) - y_test) ** 2)))
    print({name: round(value, 2) for name, value in rmse.items()})
    assert rmse["weighted"] <= 1.02 * rmse["mean"]
    assert rmse["stacking"] <= 1.02 * rmse["mean"]


def test_a_refit_with_a_fixed_rule_drops_the_earlier_held_out_outputs(classification_data):
    X, y = classification_data
    ens = EnsembleClassifier(_pool(), combiner=WeightedCombiner(), cv=3, random_state=0)
    assert ens.fit(X, y).oof_predictions_.shape[0] == len(_pool())
    ens.set_params(combiner=MeanCombiner(), cv=None).fit(X, y)
    assert not hasattr(ens, "oof_predictions_") and not hasattr(ens, "oof_index_")
