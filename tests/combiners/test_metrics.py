"""The one metrics module, checked once against scikit-learn and torchmetrics."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error
from torchmetrics.functional.classification import multiclass_calibration_error

from combiners import metrics


def _probabilities(rng, n, k, scale):
    logits = rng.normal(0, scale, (n, k))
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True)


@pytest.fixture(params=range(6))
def case(request):
    rng = np.random.default_rng(request.param)
    n, k = int(rng.integers(20, 500)), int(rng.integers(2, 8))
    proba = _probabilities(rng, n, k, rng.uniform(0.3, 40))
    return rng.integers(0, k, n), proba, rng.uniform(0.1, 3, n)


def test_nll_is_scikit_learns_log_loss_to_the_last_bit(case):
    y, proba, weights = case
    labels = np.arange(proba.shape[1])
    assert metrics.nll(y, proba) == log_loss(y, y_proba=proba, labels=labels)
    assert metrics.nll(y, proba, weights) == log_loss(
        y, y_proba=proba, labels=labels, sample_weight=weights
    )


def test_accuracy_brier_and_rmse_agree_with_scikit_learn(case):
    y, proba, weights = case
    assert metrics.accuracy(y, proba, weights) == pytest.approx(
        accuracy_score(y, proba.argmax(1), sample_weight=weights)
    )
    assert metrics.error(y, proba) == pytest.approx(1 - accuracy_score(y, proba.argmax(1)))
    onehot = np.eye(proba.shape[1])[y]
    assert metrics.brier(y, proba, weights) == pytest.approx(
        np.average(((proba - onehot) ** 2).sum(1), weights=weights)
    )
    target = proba @ np.arange(proba.shape[1], dtype=float)
    prediction = np.stack([target + 0.3, target - 0.1], axis=1)
    assert metrics.rmse(np.c_[target, target], prediction, weights) == pytest.approx(
        np.sqrt(mean_squared_error(np.c_[target, target], prediction, sample_weight=weights))
    )


def test_ece_is_torchmetrics_calibration_error(case):
    y, proba, weights = case
    expected = multiclass_calibration_error(
        torch.as_tensor(proba), torch.as_tensor(y), num_classes=proba.shape[1], n_bins=15
    )
    # torchmetrics sums in float32: equal to its rounding
    assert metrics.ece(y, proba) == pytest.approx(float(expected), abs=1e-6)


def test_a_weight_counts_as_that_many_copies_of_the_row(case):
    y, proba, _ = case
    counts = np.random.default_rng(0).integers(1, 4, len(y))
    rows = np.repeat(np.arange(len(y)), counts)
    for metric in (metrics.nll, metrics.brier, metrics.accuracy, metrics.ece):
        assert metric(y, proba, counts.astype(float)) == pytest.approx(metric(y[rows], proba[rows]))
    # equal weights are no weights: the weighted and the plain ECE are one computation
    assert metrics.ece(y, proba, np.ones(len(y))) == metrics.ece(y, proba)


def test_stacked_candidates_give_one_value_each(case):
    y, proba, weights = case
    flat = np.full_like(proba, 1.0 / proba.shape[1])
    stacked = np.stack([proba, flat])
    for name, metric in metrics.CLASSIFICATION_LOSSES.items():
        values = metric(y, stacked, weights)
        assert values.shape == (2,), name
        assert values[0] == pytest.approx(metric(y, proba, weights))
        assert values[1] == pytest.approx(metric(y, flat, weights))
    assert metrics.rmse(y, stacked[:, :, :1]).shape == (2,)


def test_kl_divergence_is_zero_for_equal_distributions_and_positive_otherwise(case):
    _, proba, _ = case
    assert metrics.kl_divergence(proba, proba) == pytest.approx(0.0, abs=1e-12)
    assert metrics.kl_divergence(proba, np.roll(proba, 1, axis=1)) > 0
