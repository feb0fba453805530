import numpy as np
import pytest
from scipy.special import softmax
from sklearn.datasets import load_iris
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier

from combiners import MeanCombiner


def test_arithmetic_equals_sklearn_soft_voting():
    X, y = load_iris(return_X_y=True)
    estimators = [
        ("lr", LogisticRegression(max_iter=1000)),
        ("nb", GaussianNB()),
        ("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
    ]
    voting = VotingClassifier(estimators, voting="soft").fit(X, y)
    predictions = np.stack([est.predict_proba(X) for est in voting.estimators_])
    fused = MeanCombiner().fit(predictions, y).combine(predictions)
    np.testing.assert_allclose(fused, voting.predict_proba(X))


def test_geometric_is_normalised_geometric_mean():
    rng = np.random.default_rng(0)
    predictions = softmax(rng.normal(size=(4, 10, 3)), axis=2)
    fused = MeanCombiner("geometric").fit(predictions).combine(predictions)
    expected = np.prod(predictions, axis=0) ** (1 / 4)
    np.testing.assert_allclose(fused, expected / expected.sum(axis=1, keepdims=True))


def test_logit_mean_averages_log_odds():
    predictions = np.array([[[0.9, 0.1]], [[0.6, 0.4]]])
    fused = MeanCombiner("logit").fit(predictions).combine(predictions)
    log_odds = np.mean(np.log(predictions / (1 - predictions)), axis=0)
    expected = 1 / (1 + np.exp(-log_odds))
    np.testing.assert_allclose(fused, expected / expected.sum(axis=1, keepdims=True))
    # sharper than the arithmetic mean where the members agree on the top class
    assert fused[0, 0] > 0.75


def test_regression_mean():
    predictions = np.array([[[1.0], [10.0]], [[3.0], [-10.0]]])
    np.testing.assert_allclose(MeanCombiner().fit(predictions).combine(predictions), [[2.0], [0.0]])


def test_log_space_methods_need_probabilities():
    predictions = np.array([[[2.0, -1.0]]])
    combiner = MeanCombiner("geometric").fit(predictions)
    with pytest.raises(ValueError, match=r"must be class probabilities .* values in \[-1, 2\]"):
        combiner.combine(predictions)
    # in [0, 1] but rows that do not sum to 1: refused too
    halves = np.full((2, 3, 2), 0.25)
    with pytest.raises(ValueError, match=r"a row summing to 0.5"):
        MeanCombiner("logit").fit(halves).combine(halves)


def test_unknown_method():
    with pytest.raises(
        ValueError,
        match=r"'method' parameter of MeanCombiner must be a str among .*\. Got 'median'",
    ):
        MeanCombiner("median").fit(np.ones((1, 1, 2)) / 2)
