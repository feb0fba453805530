import numpy as np
import pytest
from scipy.special import softmax

from combiners import EnsembleSelection


def _pool(seed=0, n=300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    strengths = [2.0, 1.5, 1.0, 0.0, 0.0]  # the last two are pure noise
    predictions = np.stack(
        [softmax(s * np.eye(3)[y] + rng.normal(size=(n, 3)), axis=1) for s in strengths]
    )
    return predictions, y


def test_selection_keeps_best_trajectory_point_and_prefers_strong_members():
    predictions, y = _pool()
    selection = EnsembleSelection(n_iter=30, n_init=1).fit(predictions, y)
    (trajectory,) = selection.trajectories_
    assert len(trajectory) == 31  # one initial member, then 30 additions
    assert trajectory[0][0] == 0  # sorted initialisation starts from the best member
    losses = np.array([loss for _, loss in trajectory])
    fused = np.tensordot(selection.weights_, predictions, axes=1)
    kept_loss = -np.mean(np.log(fused[np.arange(len(y)), y]))
    assert kept_loss == pytest.approx(losses.min())
    assert selection.weights_[3:].sum() < 0.1
    assert selection.weights_[0] > selection.weights_[2]


def test_sorted_initialisation_with_several_members():
    predictions, y = _pool()
    selection = EnsembleSelection(n_iter=0, n_init=3).fit(predictions, y)
    np.testing.assert_allclose(selection.weights_, [1 / 3, 1 / 3, 1 / 3, 0, 0])


def test_bagging_is_reproducible_and_averages_bags():
    predictions, y = _pool()
    first = EnsembleSelection(n_iter=10, n_bags=8, random_state=0).fit(predictions, y)
    again = EnsembleSelection(n_iter=10, n_bags=8, random_state=0).fit(predictions, y)
    np.testing.assert_array_equal(first.weights_, again.weights_)
    assert len(first.trajectories_) == 8
    assert first.weights_.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "metric", ["nll", "brier", "error", lambda y, fused: -fused[np.arange(len(y)), y].mean()]
)
def test_metrics(metric):
    predictions, y = _pool()
    selection = EnsembleSelection(n_iter=10, metric=metric).fit(predictions, y)
    assert selection.weights_[:3].sum() > 0.9


def test_regression_uses_rmse():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    predictions = np.stack([y + s * rng.normal(size=200) for s in (0.1, 0.5, 3.0)])[:, :, None]
    selection = EnsembleSelection(n_iter=10, n_init=1).fit(predictions, y)
    assert selection.weights_[0] > 0.5 and selection.weights_[2] == 0


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"metric": "rmse"}, ValueError, r"metric='rmse' is not supported for classification"),
        ({"n_iter": -1}, ValueError, r"'n_iter' .* an int in the range \[0, inf\)\. Got -1 "),
        ({"n_init": 0}, ValueError, r"'n_init' .* an int in the range \[1, inf\)\. Got 0 "),
        (
            {"bag_fraction": 0.0, "n_bags": 2},
            ValueError,
            r"'bag_fraction' .* \(0.0, 1.0\]\. Got 0.0",
        ),
    ],
)
def test_bad_parameters(params, error, match):
    predictions, y = _pool()
    with pytest.raises(error, match=match):
        EnsembleSelection(**params).fit(predictions, y)
