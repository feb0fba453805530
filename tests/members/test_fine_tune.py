"""``init``: a network fine-tuned from a fitted one keeps its start, its scaling and encoding,
survives clone and save/load, and refuses what it cannot start from."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression

from members import NeuralClassifier, NeuralRegressor
from members.persistence import load, save

X, y = load_digits(return_X_y=True)
X, y = X[:400], y[:400]


@pytest.fixture(scope="module")
def parent():
    return NeuralClassifier(
        "mlp", module_kwargs={"hidden": (32,)}, max_epochs=5, random_state=0
    ).fit(X, y)


def tune(parent, **kwargs):
    options = {"module_kwargs": {"hidden": (32,)}, "max_epochs": 1, "random_state": 1, **kwargs}
    return NeuralClassifier("mlp", init=parent, **options)


def test_a_fine_tune_starts_from_the_parent_network(parent):
    still = tune(parent, lr=1e-9).fit(X, y)
    np.testing.assert_allclose(still.predict_proba(X), parent.predict_proba(X), atol=1e-5)
    fresh = NeuralClassifier(
        "mlp", module_kwargs={"hidden": (32,)}, max_epochs=1, lr=1e-9, random_state=1
    ).fit(X, y)
    assert np.abs(fresh.predict_proba(X) - parent.predict_proba(X)).max() > 0.05


def test_the_parent_is_shared_by_clone_and_never_modified(parent):
    before = {k: v.clone() for k, v in parent.model_.state_dict().items()}
    template = tune(parent, lr=1e-2)
    twin = clone(template)
    assert twin.init is parent and hasattr(parent, "model_")
    twin.fit(X, y)
    for key, value in parent.model_.state_dict().items():
        assert np.array_equal(value.numpy(), before[key].numpy())
    assert not np.allclose(twin.predict_proba(X), parent.predict_proba(X))


def test_a_fine_tune_keeps_the_parent_s_classes_and_scaling(parent):
    few = y < 5
    tuned = tune(parent).fit(X[few] * 2.0, y[few])
    np.testing.assert_array_equal(tuned.classes_, parent.classes_)
    np.testing.assert_array_equal(tuned.x_mean_, parent.x_mean_)
    assert tuned.predict_proba(X).shape == (len(X), 10)
    with pytest.raises(ValueError, match="labels"):
        tune(parent).fit(X, np.where(y == 0, 99, y))


def test_a_regressor_fine_tune_keeps_the_target_scaling():
    Xr, yr = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    base = NeuralRegressor("mlp", max_epochs=3, random_state=0).fit(Xr, yr)
    tuned = NeuralRegressor("mlp", init=base, max_epochs=1, random_state=1).fit(
        Xr[:50], yr[:50] * 10
    )
    assert tuned.y_mean_ == pytest.approx(base.y_mean_)
    assert tuned.y_scale_ == pytest.approx(base.y_scale_)
    assert tuned.predict(Xr).shape == (200,)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: tune(p, module_kwargs={"hidden": (16,)}), ValueError, "module_kwargs="),
        (lambda p: NeuralClassifier("cnn1d", init=p), ValueError, "module='mlp'"),
        (lambda p: tune(p, standardize=False), ValueError, "standardize="),
        (lambda p: NeuralRegressor("mlp", init=p), TypeError, "fitted NeuralRegressor"),
        (lambda p: tune(NeuralClassifier()), ValueError, "not fitted"),
        (lambda p: tune("parent.ckpt"), TypeError, "got str"),
    ],
    ids=["width", "module", "standardize", "kind", "unfitted", "not-an-estimator"],
)
def test_what_a_fine_tune_cannot_start_from_is_refused(parent, make, error, match):
    with pytest.raises(error, match=match):
        make(parent).fit(X, y)


def test_other_features_are_refused(parent):
    with pytest.raises(ValueError, match="init was fitted on 64"):
        tune(parent).fit(X[:, :60], y)


def test_a_fine_tune_saves_and_loads_with_its_parent(parent, tmp_path):
    tuned = tune(parent).fit(X, y)
    save(tuned, tmp_path / "tuned")
    loaded = load(tmp_path / "tuned")
    np.testing.assert_allclose(loaded.predict_proba(X), tuned.predict_proba(X))
    np.testing.assert_allclose(loaded.init.predict_proba(X), parent.predict_proba(X))
