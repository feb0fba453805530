"""Every registered backbone is built, run and trained through the same path (timm-style)."""

import numpy as np
import pytest
import torch
from torch import nn

from members import BACKBONES, NeuralClassifier, build_backbone, get_backbone, register_backbone

# 64 features: a square for cnn2d, a signal of length 64 for the 1-D nets.
N_FEATURES, N_OUTPUTS = 64, 3


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_forward_and_backward(name):
    network = build_backbone(name, N_FEATURES, N_OUTPUTS)
    x = torch.randn(5, N_FEATURES)
    out = network(x)
    assert out.shape == (5, N_OUTPUTS)
    out.sum().backward()
    assert all(p.grad is not None for p in network.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_trains_as_member(name):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    X = rng.normal(size=(120, N_FEATURES)) + y[:, None]  # separable: the mean encodes the class
    clf = NeuralClassifier(name, max_epochs=8, batch_size=32, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


def test_unknown_name_lists_known_backbones():
    with pytest.raises(ValueError, match=r"not a known backbone.*'cnn1d'.*'mlp'"):
        get_backbone("transformer")


def test_register_rejects_duplicate_name():
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("mlp")(lambda n_features, n_outputs: nn.Linear(n_features, n_outputs))


def test_bad_module_kwargs_name_the_backbone():
    with pytest.raises(ValueError, match=r"module_kwargs \['width'\] do not fit 'mlp'"):
        build_backbone("mlp", 4, 2, {"width": 3})


def test_factory_must_return_a_module():
    with pytest.raises(TypeError, match="must return a torch.nn.Module; got int"):
        build_backbone(lambda n_features, n_outputs: 3, 4, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "tanh"}, r"activation='tanh' is not supported"),
        ({"dropout": 1.5}, r"dropout must be in \[0, 1\); got 1.5"),
    ],
)
def test_mlp_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_backbone("mlp", 4, 2, kwargs)


@pytest.mark.parametrize("activation", ["relu", "gelu", "leaky_relu", "elu"])
def test_mlp_options_build(activation):
    network = build_backbone(
        "mlp",
        6,
        2,
        {"hidden": (8, 4), "activation": activation, "dropout": 0.1, "batch_norm": True},
    )
    assert any(isinstance(m, nn.BatchNorm1d) for m in network.modules())
    assert network(torch.randn(3, 6)).shape == (3, 2)


def test_cnn2d_input_shape():
    network = build_backbone("cnn2d", 2 * 4 * 6, 5, {"input_shape": (2, 4, 6)})
    assert network(torch.randn(3, 48)).shape == (3, 5)
    with pytest.raises(ValueError, match=r"input_shape=\(5, 5\) does not match n_features=48"):
        build_backbone("cnn2d", 48, 5, {"input_shape": (5, 5)})
    with pytest.raises(ValueError, match="n_features=48 is not a square number"):
        build_backbone("cnn2d", 48, 5)
