"""The contract every combiner in the registry keeps: a new combiner is tested by registering it."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from combiners import COMBINERS


def _predictions(n_members=3, n_samples=20, n_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n_members, n_samples, n_classes))
    return np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True), rng.integers(0, 4, n_samples)


@pytest.fixture(params=sorted(COMBINERS))
def combiner(request):
    return COMBINERS[request.param]()


def test_fit_returns_self_and_sets_state_only_in_fit(combiner):
    predictions, y = _predictions()
    assert not [k for k in vars(combiner) if k.endswith("_")]
    assert combiner.fit(predictions, y) is combiner
    assert combiner.n_members_ == 3 and combiner.n_outputs_ == 4


def test_not_fitted_error(combiner):
    with pytest.raises(NotFittedError):
        combiner.combine(_predictions()[0])


def test_output_shape_rows_and_idempotent_fit(combiner):
    predictions, y = _predictions()
    first = combiner.fit(predictions, y).combine(predictions)
    second = combiner.fit(predictions, y).combine(predictions)
    assert first.shape == (20, 4)
    np.testing.assert_allclose(first.sum(axis=1), 1.0)
    assert (first >= 0).all()
    np.testing.assert_array_equal(first, second)


def test_clone_and_numpy_torch_agree(combiner):
    predictions, y = _predictions()
    fitted = combiner.fit(predictions, y)
    from_torch = clone(combiner).fit(torch.tensor(predictions), torch.tensor(y))
    np.testing.assert_allclose(
        from_torch.combine(torch.tensor(predictions)), fitted.combine(predictions)
    )


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (np.ones((3, 4)), ValueError, r"must have 3 dimensions .* got shape \(3, 4\)"),
        (
            np.ones((2, 20, 4)) / 4,
            ValueError,
            r"fitted on 3 members with 4 outputs; got .*\(2, 20, 4\)",
        ),
        (np.full((3, 20, 4), np.nan), ValueError, "NaN or infinite"),
        (np.ones((3, 0, 4)), ValueError, "at least one member, sample and output"),
        ([["a"]], TypeError, "must be a numeric array"),
    ],
)
def test_bad_predictions(combiner, bad, error, match):
    predictions, y = _predictions()
    combiner.fit(predictions, y)
    with pytest.raises(error, match=match):
        combiner.combine(bad)


def test_mixture_weights_are_the_weighted_mean_the_rule_computes(combiner):
    """A rule that reports mixture weights fuses exactly as that weighted mean (the ensembles
    read uncertainty from them); the others report None."""
    predictions, y = _predictions()
    fitted = combiner.fit(predictions, y)
    weights = fitted.mixture_weights()
    # auto: its default candidates are all weighted means
    expected = {"mean", "weighted", "selection", "snapshot", "auto"}
    name = next(key for key, kind in COMBINERS.items() if isinstance(combiner, kind))
    assert (weights is not None) == (name in expected)
    if weights is not None:
        assert weights.shape == (3,) and (weights >= 0).all()
        assert weights.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(
            fitted.combine(predictions), np.tensordot(weights, predictions, axes=1)
        )


def test_mean_rules_other_than_arithmetic_are_not_mixtures():
    predictions, y = _predictions()
    for method in ("geometric", "logit"):
        assert COMBINERS["mean"](method).fit(predictions, y).mixture_weights() is None
