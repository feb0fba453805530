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


BAD_OPTIONS = [
    # (backbone, module_kwargs, error, message fragment): caught before torch sees the value
    ("mlp", {"activation": "tanh"}, ValueError, r"'activation' parameter of MLP must be one of"),
    ("mlp", {"dropout": 1.5}, ValueError, r"'dropout' .* \[0.0, 1.0\)\. Got 1.5 instead"),
    ("mlp", {"hidden": "x"}, TypeError, r"'hidden' parameter of MLP .* Got 'x' instead"),
    ("mlp", {"hidden": (16, 0)}, ValueError, r"'hidden' .* ints >= 1\. Got \(16, 0\) instead"),
    ("mlp", {"batch_norm": "yes"}, TypeError, r"'batch_norm' parameter of MLP .* Got 'yes'"),
    ("cnn1d", {"channels": 64}, TypeError, r"'channels' parameter of CNN1d .* Got 64 instead"),
    ("cnn1d", {"channels": []}, ValueError, r"'channels' .* a non-empty list .* Got \[\]"),
    ("cnn1d", {"kernel_size": 0}, ValueError, r"'kernel_size' parameter of CNN1d .* Got 0 "),
    ("cnn1d", {"in_channels": 0}, ValueError, r"'in_channels' parameter of CNN1d .* Got 0 "),
    ("cnn2d", {"channels": (8, 2.5)}, TypeError, r"'channels' parameter of CNN2d"),
    ("cnn2d", {"input_shape": 8}, TypeError, r"'input_shape' parameter of CNN2d .* or None"),
    ("resnet", {"blocks_per_stage": 0}, ValueError, r"'blocks_per_stage' parameter of ResNet"),
    ("resnet", {"dropout": -0.1}, ValueError, r"'dropout' parameter of ResNet"),
]


@pytest.mark.parametrize(
    "backbone, kwargs, error, match",
    BAD_OPTIONS,
    ids=[f"{b}-{sorted(k)[0]}" for b, k, *_ in BAD_OPTIONS],
)
def test_bad_backbone_options_are_named_before_torch_sees_them(backbone, kwargs, error, match):
    with pytest.raises(error, match=match):
        build_backbone(backbone, 16, 2, kwargs)


def test_an_mlp_without_hidden_layers_is_linear():
    network = build_backbone("mlp", 4, 2, {"hidden": ()})
    assert [type(m) for m in network.layers] == [nn.Linear]


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


def test_cnn2d_keeps_the_spatial_layout_down_to_its_head():
    network = build_backbone("cnn2d", 784, 10)
    pools = [layer for layer in network.features if isinstance(layer, torch.nn.MaxPool2d)]
    first_dense = next(layer for layer in network.head if isinstance(layer, torch.nn.Linear))
    assert len(pools) == 2 and first_dense.in_features == 32 * 7 * 7  # a 7x7 grid, not a mean
    # a grid too small to pool keeps its last pixels; the head still sees them all
    tiny = build_backbone("cnn2d", 4, 3, {"channels": (4, 4, 4)})
    assert sum(isinstance(layer, torch.nn.MaxPool2d) for layer in tiny.features) == 1
    assert tiny(torch.zeros(2, 4)).shape == (2, 3)
