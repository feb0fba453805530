"""Learned combiners and calibrators fit on weighted held-out rows: an integer weight counts as
that many copies of the row."""

import numpy as np
import pytest
from sklearn.metrics import log_loss
from sklearn.neighbors import KNeighborsClassifier

from combiners import (
    EnsembleSelection,
    MeanCombiner,
    StackingCombiner,
    TemperatureScaling,
    VarianceScaling,
    WeightedCombiner,
)

RNG = np.random.default_rng(0)
N = 80
# 3 copies of each row of the first half, 0 or 1 of the second half's
COUNTS = np.where(np.arange(N) < N // 2, 3, np.arange(N) % 2)


def classification_outputs():
    """Member 0 is right on the first half (which the weights favour), member 1 on the second
    half, member 2 is noise."""
    y = RNG.integers(0, 3, N)
    right = np.full((N, 3), 0.1)
    right[np.arange(N), y] = 0.8
    wrong = np.roll(right, 1, axis=1) * 0.6 + 0.4 / 3
    first = (np.arange(N) < N // 2)[:, None]
    return np.stack(
        [np.where(first, right, wrong), np.where(first, wrong, right), RNG.dirichlet([1] * 3, N)]
    ), y


def regression_outputs():
    y = RNG.normal(size=(N, 2))
    return np.stack([y + RNG.normal(0, s, (N, 2)) for s in (0.3, 0.6, 1.0)]), y


def repeat(predictions, y):
    return np.repeat(predictions, COUNTS, axis=1), np.repeat(y, COUNTS, axis=0)


@pytest.mark.parametrize(
    ("combiner", "task"),
    [
        (WeightedCombiner(), "classification"),
        (WeightedCombiner(), "regression"),
        (EnsembleSelection(n_iter=20), "classification"),
        (EnsembleSelection(n_iter=20), "regression"),
        (EnsembleSelection(n_iter=20, metric="brier"), "classification"),
        (StackingCombiner(), "classification"),
        (StackingCombiner(), "regression"),
    ],
)
def test_weights_equal_repeated_rows(combiner, task):
    predictions, y = classification_outputs() if task == "classification" else regression_outputs()
    weighted = combiner.fit(predictions, y, sample_weight=COUNTS)
    fused = weighted.combine(predictions)
    on_copies = type(combiner)(**combiner.get_params()).fit(*repeat(predictions, y))
    np.testing.assert_allclose(fused, on_copies.combine(predictions), atol=1e-5)
    unweighted = type(combiner)(**combiner.get_params()).fit(predictions, y)
    assert not np.allclose(fused, unweighted.combine(predictions), atol=1e-5)


def test_equal_weights_change_nothing_and_fixed_rules_ignore_them():
    predictions, y = classification_outputs()
    plain = WeightedCombiner().fit(predictions, y)
    equal = WeightedCombiner().fit(predictions, y, sample_weight=np.full(N, 5.0))
    np.testing.assert_allclose(plain.weights_, equal.weights_, atol=1e-6)
    mean = MeanCombiner().fit(predictions, y, sample_weight=COUNTS)
    np.testing.assert_array_equal(mean.combine(predictions), predictions.mean(axis=0))


def test_callable_selection_metric_receives_the_weights():
    predictions, y = classification_outputs()
    received = []

    def metric(y_true, fused, sample_weight=None):
        received.append(sample_weight)
        return log_loss(y_true, fused, sample_weight=sample_weight, labels=[0, 1, 2])

    EnsembleSelection(n_iter=2, metric=metric).fit(predictions, y, sample_weight=COUNTS)
    assert all(np.array_equal(w, COUNTS) for w in received)


def test_temperature_and_variance_scaling_weights_equal_repeated_rows():
    predictions, y = classification_outputs()
    proba = predictions[0]
    weighted = TemperatureScaling().fit(proba, y, sample_weight=COUNTS)
    on_copies = TemperatureScaling().fit(np.repeat(proba, COUNTS, axis=0), np.repeat(y, COUNTS))
    assert weighted.temperature_ == pytest.approx(on_copies.temperature_, rel=1e-4)

    outputs, target = regression_outputs()
    mean, variance = outputs[0], np.full_like(outputs[0], 0.2)
    weighted_v = VarianceScaling().fit(mean, variance, target, sample_weight=COUNTS)
    copies_v = VarianceScaling().fit(
        np.repeat(mean, COUNTS, axis=0),
        np.repeat(variance, COUNTS, axis=0),
        np.repeat(target, COUNTS, axis=0),
    )
    np.testing.assert_allclose(weighted_v.scale_, copies_v.scale_, rtol=1e-10)


def test_meta_learner_without_sample_weight_is_named():
    predictions, y = classification_outputs()
    stacking = StackingCombiner(KNeighborsClassifier())
    with pytest.raises(TypeError, match="KNeighborsClassifier takes no sample_weight"):
        stacking.fit(predictions, y, sample_weight=COUNTS)
    stacking.fit(predictions, y)  # unweighted, it fits


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        (np.ones(N + 1), "sample_weight.shape"),
        (-np.ones(N), "Negative values"),
        (np.zeros(N), "at least one non-zero"),
    ],
)
def test_bad_weights_are_refused(weights, match):
    predictions, y = classification_outputs()
    with pytest.raises(ValueError, match=match):
        WeightedCombiner().fit(predictions, y, sample_weight=weights)
    with pytest.raises(ValueError, match=match):
        TemperatureScaling().fit(predictions[0], y, sample_weight=weights)
