import pickle

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from torch import nn

from members import NeuralClassifier, NeuralRegressor, compress, pickled_size


@pytest.fixture(scope="module")
def fitted(classification_data):
    X, y = classification_data
    return NeuralClassifier("cnn1d", max_epochs=15, random_state=0).fit(X, y), X, y


def _weights(estimator):
    return [
        m.weight.detach()
        for m in estimator.model_.modules()
        if isinstance(m, nn.Conv1d | nn.Linear)
    ]


def test_static_int8_quantisation_shrinks_and_keeps_predictions(fitted):
    clf, X, y = fitted
    small = compress(clf, quantize="int8", X=X)
    assert pickled_size(small) <= 0.5 * pickled_size(clf)
    assert np.mean(small.predict(X) == clf.predict(X)) > 0.95
    restored = pickle.loads(pickle.dumps(small))
    np.testing.assert_array_equal(restored.predict_proba(X), small.predict_proba(X))
    np.testing.assert_allclose(small.predict_proba(X).sum(axis=1), 1.0)
    assert hasattr(clf.model_, "features")  # the original estimator is left as it was


def test_dynamic_int8_without_data_quantises_linear_layers(classification_data):
    X, y = classification_data
    mlp = NeuralClassifier("mlp", max_epochs=10, random_state=0).fit(X, y)
    small = compress(mlp, quantize="int8")
    assert pickled_size(small) <= 0.5 * pickled_size(mlp)
    assert np.mean(small.predict(X) == mlp.predict(X)) > 0.95


def test_pruning_zeroes_the_requested_share_and_finetunes(fitted):
    clf, X, y = fitted
    pruned = compress(clf, prune=0.5)
    weights = np.concatenate([w.numpy().ravel() for w in _weights(pruned)])
    assert np.mean(weights == 0) == pytest.approx(0.5, abs=0.01)
    tuned = compress(clf, prune=0.5, finetune_epochs=3, X=X, y=y)
    tuned_weights = np.concatenate([w.numpy().ravel() for w in _weights(tuned)])
    assert np.mean(tuned_weights == 0) == pytest.approx(0.5, abs=0.01)  # zeros survive tuning
    assert not np.array_equal(tuned_weights, weights)
    assert tuned.score(X, y) > 0.6


def test_regressor(regression_data):
    X, y = regression_data
    reg = NeuralRegressor(max_epochs=20, random_state=0).fit(X, y)
    small = compress(reg, quantize="int8", prune=0.3, X=X)
    assert small.predict(X).shape == y.shape
    assert small.score(X, y) > reg.score(X, y) - 0.1


def test_finetuning_a_regressor_keeps_its_target_scaling(regression_data):
    """The fine-tune encodes its targets with the fitted scaling; it never refits it."""
    X, y = regression_data
    reg = NeuralRegressor(max_epochs=20, random_state=0).fit(X, y)
    # fine-tune rows whose targets have another mean and spread than the training targets
    rows = y > np.median(y)
    assert abs(y[rows].mean() - reg.y_mean_[0]) > 0.5 * reg.y_scale_[0]
    tuned = compress(reg, prune=0.5, finetune_epochs=2, X=X[rows], y=y[rows])
    np.testing.assert_array_equal(tuned.y_mean_, reg.y_mean_)
    np.testing.assert_array_equal(tuned.y_scale_, reg.y_scale_)
    # predictions stay on the training targets' scale
    assert tuned.score(X, y) > 0.5


def test_finetuning_a_classifier_refuses_unknown_labels(fitted):
    clf, X, y = fitted
    with pytest.raises(ValueError, match=r"labels not seen during fit: \[7\]"):
        compress(clf, prune=0.5, finetune_epochs=1, X=X, y=np.where(y == 0, 7, y))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"quantize": "int4"}, ValueError, r"'quantize' parameter of compress .* Got 'int4'"),
        ({"prune": 1.5}, ValueError, r"'prune' .* \(0.0, 1.0\) or None\. Got 1.5 instead"),
        ({"finetune_epochs": -1}, ValueError, r"'finetune_epochs' parameter .*\. Got -1 "),
        ({"finetune_epochs": 2.5}, TypeError, r"'finetune_epochs' parameter .*\. Got 2.5 "),
        ({"prune": 0.5, "finetune_epochs": 2}, ValueError, "pass prune, X and y"),
    ],
)
def test_bad_arguments(fitted, kwargs, error, match):
    clf, X, y = fitted
    with pytest.raises(error, match=match):
        compress(clf, **kwargs)


def test_bad_estimators(fitted, classification_data):
    clf, X, y = fitted
    from sklearn.exceptions import NotFittedError

    with pytest.raises(TypeError, match="got LogisticRegression"):
        compress(LogisticRegression().fit(X, y), quantize="int8")
    with pytest.raises(NotFittedError):
        compress(NeuralClassifier(), quantize="int8")
    with pytest.raises(ValueError, match="already quantised"):
        compress(compress(clf, quantize="int8", X=X), prune=0.5)
    with pytest.raises(ValueError, match=r"X has 3 features"):
        compress(clf, quantize="int8", X=X[:, :3])
