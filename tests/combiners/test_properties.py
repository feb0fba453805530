"""Property-based tests: invariants every probability combiner must keep, on generated inputs."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from combiners import COMBINERS, MeanCombiner, WeightedCombiner

SETTINGS = settings(max_examples=40, deadline=None)


@st.composite
def member_probabilities(draw, min_members=1):
    n_members = draw(st.integers(min_members, 5))
    n_samples = draw(st.integers(2, 30))
    n_classes = draw(st.integers(2, 5))
    logits = draw(
        arrays(
            np.float64,
            (n_members, n_samples, n_classes),
            elements=st.floats(-20, 20, allow_nan=False, allow_infinity=False),
        )
    )
    proba = np.exp(logits - logits.max(axis=2, keepdims=True))
    proba /= proba.sum(axis=2, keepdims=True)
    y = draw(arrays(np.int64, n_samples, elements=st.integers(0, n_classes - 1)))
    return proba, y


@pytest.mark.parametrize("name", sorted(COMBINERS))
@SETTINGS
@given(data=member_probabilities())
def test_outputs_are_probability_rows(name, data):
    predictions, y = data
    if name == "stacking":
        assume(len(np.unique(y)) > 1)  # one class: a clear error instead (test_stacking.py)
    fused = COMBINERS[name]().fit(predictions, y).combine(predictions)
    assert fused.shape == predictions.shape[1:]
    assert np.isfinite(fused).all() and (fused >= -1e-12).all()
    np.testing.assert_allclose(fused.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("method", ["arithmetic", "geometric", "logit"])
@SETTINGS
@given(data=member_probabilities(min_members=2), seed=st.integers(0, 2**16))
def test_mean_ignores_member_order(method, data, seed):
    predictions, y = data
    order = np.random.default_rng(seed).permutation(len(predictions))
    combiner = MeanCombiner(method).fit(predictions)
    np.testing.assert_allclose(
        combiner.combine(predictions[order]), combiner.combine(predictions), atol=1e-12
    )


@SETTINGS
@given(data=member_probabilities(min_members=2), seed=st.integers(0, 2**16))
def test_fixed_weights_follow_their_members(data, seed):
    predictions, y = data
    weights = np.random.default_rng(seed).uniform(0.1, 1.0, len(predictions))
    order = np.random.default_rng(seed + 1).permutation(len(predictions))
    fused = WeightedCombiner(weights).fit(predictions).combine(predictions)
    permuted = WeightedCombiner(weights[order]).fit(predictions[order])
    np.testing.assert_allclose(permuted.combine(predictions[order]), fused, atol=1e-12)


@SETTINGS
@given(data=member_probabilities())
def test_a_zero_weight_member_changes_nothing(data):
    predictions, y = data
    weights = np.ones(len(predictions))
    other = predictions[:1, :, ::-1]  # a different, valid member: classes reversed
    fused = WeightedCombiner(weights).fit(predictions).combine(predictions)
    padded = np.concatenate([predictions, other])
    with_zero = WeightedCombiner([*weights, 0.0]).fit(padded).combine(padded)
    np.testing.assert_allclose(with_zero, fused, atol=1e-12)


@SETTINGS
@given(data=member_probabilities(min_members=2))
def test_learned_weights_never_lose_to_the_mean_on_their_own_data(data):
    predictions, y = data
    rows = np.arange(len(y))

    def nll(fused):
        return -np.mean(np.log(np.maximum(fused[rows, y], 1e-12)))

    learned = WeightedCombiner().fit(predictions, y).combine(predictions)
    mean = MeanCombiner().fit(predictions).combine(predictions)
    assert nll(learned) <= nll(mean) + 1e-6  # the mean is one point of the simplex searched
