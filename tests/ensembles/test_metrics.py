"""Each metric against an independent reference."""

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import brier_score_loss

from ensembles import metrics


@pytest.fixture
def proba_and_labels():
    rng = np.random.default_rng(0)
    proba = softmax(rng.normal(scale=2.0, size=(500, 4)), axis=1)
    labels = np.array([rng.choice(4, p=row) for row in proba])  # roughly calibrated
    return labels, proba


def reference_ece(labels, proba, n_bins=15):
    confidence, predicted = proba.max(axis=1), proba.argmax(axis=1)
    correct = (predicted == labels).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            total += in_bin.mean() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return total


def test_nll_is_mean_negative_log_probability_of_the_truth(proba_and_labels):
    labels, proba = proba_and_labels
    expected = -np.mean(np.log(proba[np.arange(len(labels)), labels]))
    assert metrics.nll(labels, proba) == pytest.approx(expected)


def test_accuracy(proba_and_labels):
    labels, proba = proba_and_labels
    assert metrics.accuracy(labels, proba) == pytest.approx(np.mean(proba.argmax(1) == labels))


def test_brier_matches_sklearn_for_two_classes():
    rng = np.random.default_rng(1)
    p1 = rng.uniform(size=300)
    labels = (rng.uniform(size=300) < p1).astype(int)
    proba = np.column_stack([1 - p1, p1])
    # scikit-learn's binary Brier counts the positive class only: half the two-column sum
    assert metrics.brier(labels, proba) == pytest.approx(2 * brier_score_loss(labels, p1))


def test_ece_matches_reference_binning(proba_and_labels):
    labels, proba = proba_and_labels
    assert metrics.ece(labels, proba) == pytest.approx(reference_ece(labels, proba), abs=1e-5)
    overconfident = np.eye(4)[(labels + 1) % 4] * 0.96 + 0.01  # 97 % sure, always wrong
    assert metrics.ece(labels, overconfident) == pytest.approx(0.97, abs=1e-5)


def test_disagreement_matrix():
    predictions = np.zeros((3, 4, 2))
    predictions[0, :, 0] = 1  # votes 0 0 0 0
    predictions[1, :2, 0] = 1
    predictions[1, 2:, 1] = 1  # votes 0 0 1 1
    predictions[2, :, 1] = 1  # votes 1 1 1 1
    expected = np.array([[0, 0.5, 1], [0.5, 0, 0.5], [1, 0.5, 0]])
    np.testing.assert_allclose(metrics.disagreement(predictions), expected)


def test_regression_report():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    prediction = np.array([1.0, 2.0, 3.0, 6.0])
    report = metrics.regression_report(y, prediction)
    assert report["rmse"] == pytest.approx(1.0)
    assert report["mae"] == pytest.approx(0.5)
    assert report["r2"] == pytest.approx(1 - 4 / 5)
