"""AutoCombiner: the rule with the lowest cross-fitted held-out loss (issue 29)."""

import numpy as np
import pytest
from sklearn.model_selection import KFold

from combiners import AutoCombiner, MeanCombiner, WeightedCombiner
from combiners.auto import held_out_loss
from combiners.selection import EnsembleSelection


def _strong_and_weak(n=300, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 3, n)
    strong = 0.1 / 2 + 0.85 * np.eye(3)[y]  # right on every row, 0.9 on the true class
    weak = rng.dirichlet([1, 1, 1], size=(4, n))  # four members that guess
    return np.concatenate([strong[None], weak]), y


def test_one_strong_four_weak_chooses_learned_weights_on_the_strong_member():
    predictions, y = _strong_and_weak()
    auto = AutoCombiner().fit(predictions, y)
    assert auto.chosen_ in ("weighted", "selection")
    assert auto.scores_[auto.chosen_] < auto.scores_["mean"]
    assert auto.mixture_weights().argmax() == 0
    np.testing.assert_allclose(auto.combine(predictions), auto.combiner_.combine(predictions))


def test_exchangeable_members_keep_the_mean():
    # identical members: every rule gives the same loss, and a tie keeps the simplest
    predictions, y = _strong_and_weak()
    same = np.repeat(predictions[1:2], 4, axis=0)
    auto = AutoCombiner().fit(same, y)
    assert auto.chosen_ == "mean"
    assert isinstance(auto.combiner_, MeanCombiner)
    assert str(auto) == "auto (mean)"


def test_scores_are_cross_fitted_not_in_sample():
    predictions, y = _strong_and_weak(n=100, seed=1)
    predictions = predictions[1:]  # guessing members: learned weights only fit their noise
    auto = AutoCombiner(cv=4, random_state=3).fit(predictions, y)
    fused = np.zeros(predictions.shape[1:])
    for train, test in KFold(4, shuffle=True, random_state=3).split(y):
        fused[test] = (
            WeightedCombiner().fit(predictions[:, train], y[train]).combine(predictions[:, test])
        )
    assert auto.scores_["weighted"] == pytest.approx(held_out_loss(fused, y, True, None))
    in_sample = WeightedCombiner().fit(predictions, y).combine(predictions)
    assert auto.scores_["weighted"] > held_out_loss(in_sample, y, True, None)


def test_regression_scores_rmse_and_weights_rows():
    rng = np.random.RandomState(0)
    y = rng.normal(size=200)
    good = (y + 0.1 * rng.normal(size=200))[None, :, None]
    bad = rng.normal(size=(3, 200, 1))
    predictions = np.concatenate([good, bad])
    auto = AutoCombiner().fit(predictions, y)
    assert auto.chosen_ != "mean"
    weighted = AutoCombiner().fit(predictions, y, sample_weight=rng.uniform(0.5, 2, 200))
    assert weighted.scores_ != auto.scores_


def test_own_candidates_and_their_errors():
    predictions, y = _strong_and_weak()
    auto = AutoCombiner([("sel", EnsembleSelection(n_iter=5))]).fit(predictions, y)
    assert auto.chosen_ == "sel" and list(auto.scores_) == ["sel"]
    with pytest.raises(ValueError, match=r"candidates must be a non-empty list of \(name, "):
        AutoCombiner([("mean", "mean")]).fit(predictions, y)
    with pytest.raises(ValueError, match="candidates must be a non-empty list"):
        AutoCombiner([]).fit(predictions, y)
    with pytest.raises(ValueError, match="needs y"):
        AutoCombiner().fit(predictions)
