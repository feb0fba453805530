import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
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


def test_int8_quantises_every_linear_layer_and_keeps_predictions(classification_data):
    X, y = classification_data
    mlp = NeuralClassifier("mlp", max_epochs=10, random_state=0).fit(X, y)
    small = compress(mlp, quantize="int8")
    linear = [m for m in small.model_.modules() if isinstance(m, nn.Linear)]
    assert linear and all(type(m.weight).__name__ == "Int8Tensor" for m in linear)
    assert pickled_size(small) <= 0.35 * float32_size(mlp)
    assert np.mean(small.predict(X) == mlp.predict(X)) > 0.95
    assert np.abs(small.predict_proba(X) - mlp.predict_proba(X)).max() < 0.05
    restored = pickle.loads(pickle.dumps(small))
    np.testing.assert_array_equal(restored.predict_proba(X), small.predict_proba(X))
    np.testing.assert_allclose(small.predict_proba(X).sum(axis=1), 1.0)
    assert type(mlp.model_.layers[0].weight) is nn.Parameter  # the original is left as it was


def test_int8_leaves_convolutions_float(fitted):
    """torchao has no int8 convolution: a cnn1d's head is int8, its convolutions float32."""
    clf, X, y = fitted
    small = compress(clf, quantize="int8")
    assert type(small.model_.head[1].weight).__name__ == "Int8Tensor"
    convolutions = [m for m in small.model_.modules() if isinstance(m, nn.Conv1d)]
    assert convolutions and all(m.weight.dtype == torch.float32 for m in convolutions)
    assert np.mean(small.predict(X) == clf.predict(X)) > 0.95
    assert hasattr(clf.model_, "features")  # the original estimator is left as it was


def test_int8_logs_no_deprecation():
    """Importing torchao makes torch log a deprecation of its Enum registration (once per
    process, so in a fresh one); compress keeps it out of the user's output."""
    code = (
        "import warnings; warnings.simplefilter('default')\n"
        "import numpy as np\n"
        "from members import NeuralClassifier, compress\n"
        "X = np.random.default_rng(0).normal(size=(64, 5)); y = np.arange(64) % 2\n"
        "compress(NeuralClassifier(max_epochs=1).fit(X, y), quantize='int8')\n"
        "print('done')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "done" in result.stdout
    assert "deprecat" not in result.stderr.lower(), result.stderr
    assert "Failed to load" not in result.stderr, result.stderr


def float32_size(estimator):
    """Bytes of the pickled estimator with its network in float32 (fitted ones are float64)."""
    copy_ = pickle.loads(pickle.dumps(estimator))
    copy_.model_ = copy_.model_.float()
    return pickled_size(copy_)


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
    small = compress(reg, quantize="int8", prune=0.3)
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
        ({"quantize": "int8", "X": np.zeros((2, 4))}, ValueError, "no calibration rows"),
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
        compress(compress(clf, quantize="int8"), prune=0.5)
    with pytest.raises(ValueError, match=r"X has 3 features"):
        compress(clf, prune=0.5, finetune_epochs=1, X=X[:, :3], y=y)
    convolutions_only = NeuralClassifier(ConvolutionsOnly, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="has none; export it with members.to_onnx"):
        compress(convolutions_only, quantize="int8")


class ConvolutionsOnly(nn.Module):
    """A network without a linear layer: global pooling of a 1x1 convolution's classes."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.conv = nn.Conv1d(1, out_features, 1)

    def forward(self, x):
        return self.conv(x.unsqueeze(1)).mean(dim=2)
