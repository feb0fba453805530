import numpy as np
import pytest
from scipy.special import softmax

from combiners import WeightedCombiner


def _brute_force(loss, n_grid=2001):
    grid = np.linspace(0, 1, n_grid)
    losses = [loss(np.array([w, 1 - w])) for w in grid]
    return grid[int(np.argmin(losses))]


def test_learned_classification_weights_minimise_nll():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    sharp = softmax(3 * np.eye(3)[y] + rng.normal(size=(400, 3)), axis=1)
    blurry = softmax(0.5 * np.eye(3)[y] + rng.normal(size=(400, 3)), axis=1)
    predictions = np.stack([sharp, blurry])
    learned = WeightedCombiner().fit(predictions, y)

    def nll(w):
        fused = np.tensordot(w, predictions, axes=1)
        return -np.mean(np.log(fused[np.arange(400), y]))

    assert learned.weights_.sum() == pytest.approx(1.0)
    assert learned.weights_[0] == pytest.approx(_brute_force(nll), abs=2e-3)


def test_learned_regression_weights_minimise_squared_error():
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    good = y + 0.3 * rng.normal(size=300)
    biased = y + 1.0 + 0.3 * rng.normal(size=300)
    predictions = np.stack([good, biased])[:, :, None]
    learned = WeightedCombiner().fit(predictions, y)

    def mse(w):
        return np.mean((np.tensordot(w, predictions, axes=1).ravel() - y) ** 2)

    assert learned.weights_[0] == pytest.approx(_brute_force(mse), abs=2e-3)
    assert (learned.weights_ >= 0).all()


def test_useless_member_gets_no_weight():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    informative = np.column_stack([1 - (0.1 + 0.8 * y), 0.1 + 0.8 * y])
    useless = rng.dirichlet([1, 1], 300)
    learned = WeightedCombiner().fit(np.stack([informative, useless]), y)
    assert learned.weights_[1] < 0.05


def test_fixed_weights_are_normalised_and_do_not_learn():
    combiner = WeightedCombiner([2.0, 6.0])
    assert not combiner.learns
    predictions = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(combiner.fit(predictions).combine(predictions), [[0.25, 0.75]])
    np.testing.assert_allclose(combiner.weights_, [0.25, 0.75])
    assert WeightedCombiner().learns


@pytest.mark.parametrize(
    "weights, match",
    [
        ([1.0], r"one value per member; got 1 weights for 2 members"),
        ([1.0, 2.0, 3.0], r"got 3 weights for 2 members"),
        ([1.0, -1.0], r"finite and non-negative; got \[1.0, -1.0\]"),
        ([0.0, 0.0], "must not all be zero"),
        ([1.0, np.nan], "finite and non-negative"),
    ],
)
def test_bad_fixed_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        WeightedCombiner(weights).fit(np.full((2, 3, 2), 0.5))


@pytest.mark.parametrize(
    "y, match",
    [
        (None, "needs y; got y=None"),
        ([0, 1], r"y has 2 samples but predictions have 3"),
        ([0, 1, 5], r"class indices 0..1; got values in \[0, 5\]"),
        ([0.5, 1, 0], r"class indices 0..1; got float64 values"),
    ],
)
def test_bad_targets(y, match):
    with pytest.raises(ValueError, match=match):
        WeightedCombiner().fit(np.full((2, 3, 2), 0.5), y)
