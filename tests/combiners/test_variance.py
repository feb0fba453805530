import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from combiners import VarianceScaling


def test_scale_is_the_nll_minimiser_in_closed_form():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(500, 2))
    variance = rng.uniform(0.5, 2.0, size=(500, 2))
    y = mean + rng.normal(size=(500, 2)) * np.sqrt(variance) * np.array([3.0, 0.5])
    scaling = VarianceScaling().fit(mean, variance, y)
    expected = np.mean((y - mean) ** 2 / variance, axis=0)
    np.testing.assert_allclose(scaling.scale_, expected)
    assert scaling.scale_[0] == pytest.approx(9.0, rel=0.2)
    assert scaling.scale_[1] == pytest.approx(0.25, rel=0.2)

    # the NLL is lowest at the fitted scale
    def nll(scale):
        v = variance * scale
        return np.mean(0.5 * (np.log(v) + (y - mean) ** 2 / v))

    best = nll(scaling.scale_)
    for factor in (0.8, 1.25):
        assert nll(scaling.scale_ * factor) > best
    np.testing.assert_allclose(scaling.transform(variance), variance * scaling.scale_)


def test_one_output_as_vectors():
    scaling = VarianceScaling().fit(np.zeros(4), np.ones(4), np.array([1.0, -1.0, 2.0, -2.0]))
    assert scaling.scale_.tolist() == [2.5]
    assert scaling.transform(np.ones(3)).tolist() == [2.5, 2.5, 2.5]


def test_zero_variance_rows_do_not_make_the_scale_infinite():
    scaling = VarianceScaling().fit(np.zeros(3), np.zeros(3), np.array([1.0, 0.0, -1.0]))
    assert np.isfinite(scaling.scale_).all()


@pytest.mark.parametrize(
    "mean, variance, y, match",
    [
        (np.zeros(3), np.ones(4), np.zeros(3), "same shape"),
        (np.zeros(3), -np.ones(3), np.zeros(3), "non-negative"),
        (np.zeros(3), np.ones(3), np.array([0.0, np.nan, 1.0]), "finite targets"),
        (np.zeros(1), np.ones(1), np.zeros(1), "at least 2"),
    ],
)
def test_bad_input(mean, variance, y, match):
    with pytest.raises(ValueError, match=match):
        VarianceScaling().fit(mean, variance, y)


def test_transform_checks_fit_and_width():
    with pytest.raises(NotFittedError):
        VarianceScaling().transform(np.ones(3))
    scaling = VarianceScaling().fit(np.zeros((4, 2)), np.ones((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="2 output"):
        scaling.transform(np.ones((3, 3)))
