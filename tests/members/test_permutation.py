"""Permutation maths: a permuted network computes the same function, weight matching recovers
a permutation, and networks that are not one chain are refused by name."""

import numpy as np
import pytest
import torch
from torch import nn

from members import Packed, build_backbone
from members.averaging import average_networks, has_batch_norm, refresh_batch_norm
from members.permutation import (
    activation_matching,
    permutation_spec,
    permute,
    weight_matching,
)

# backbone, inputs per row, options: the three the alignment supports
CHAINS = {
    "mlp": (12, {"hidden": (16, 8)}),
    "mlp_bn": (12, {"hidden": (16, 8), "batch_norm": True, "dropout": 0.1}),
    "cnn1d": (20, {"channels": (8, 16, 16)}),
    "cnn2d": (64, {"channels": (8, 16), "hidden": (16,)}),
}


def chain(name, seed=0, **options):
    n_features, kwargs = CHAINS[name]
    torch.manual_seed(seed)
    kwargs = kwargs | options
    network = build_backbone(name.removesuffix("_bn"), n_features, 5, kwargs).double().eval()
    with torch.no_grad():  # batch-norm statistics and scales that are not the identity
        for module in network.modules():
            if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
                module.weight.normal_()
                module.bias.normal_()
    return network, n_features


def random_perms(spec, seed):
    rng = np.random.RandomState(seed)
    return [rng.permutation(size) for size in spec.sizes]


@pytest.mark.parametrize("name", list(CHAINS))
def test_a_permuted_network_computes_the_same_function(name):
    network, n_features = chain(name)
    spec = permutation_spec(network, n_features)
    twin = permute(network, random_perms(spec, 1), spec)
    x = torch.randn(9, n_features, dtype=torch.float64)
    assert not torch.equal(
        twin.state_dict()[next(iter(spec.axes))], network.state_dict()[next(iter(spec.axes))]
    )
    with torch.no_grad():
        assert float((network(x) - twin(x)).abs().max()) <= 1e-6


@pytest.mark.parametrize("name", list(CHAINS))
def test_weight_matching_recovers_the_permutation_of_a_copy(name):
    network, n_features = chain(name)
    spec = permutation_spec(network, n_features)
    perms = random_perms(spec, 2)
    shuffled = permute(network, perms, spec)
    # aligning the shuffled copy back to the original undoes the shuffle
    found = weight_matching(network, shuffled, spec)
    restored = permute(shuffled, found, spec)
    for key, value in network.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value)
    # aligning the original to the shuffled copy finds the shuffle itself
    assert all(
        np.array_equal(a, b)
        for a, b in zip(weight_matching(shuffled, network, spec), perms, strict=True)
    )


@pytest.mark.parametrize("name", list(CHAINS))
def test_activation_matching_recovers_the_permutation_of_a_copy(name):
    # gelu: no unit is silent on every row (silent ReLU units could pair either way)
    network, n_features = chain(name, activation="gelu")
    spec = permutation_spec(network, n_features)
    perms = random_perms(spec, 3)
    shuffled = permute(network, perms, spec)
    rows = np.random.RandomState(0).standard_normal((300, n_features))
    # batches of 128: the products are summed over batches
    found = activation_matching(shuffled, network, spec, rows, batch_size=128)
    assert all(np.array_equal(a, b) for a, b in zip(found, perms, strict=True))
    restored = permute(shuffled, activation_matching(network, shuffled, spec, rows), spec)
    for key, value in network.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value)


def test_activation_matching_brings_the_hidden_units_of_independent_networks_closer():
    a, n_features = chain("cnn2d", seed=0)
    b, _ = chain("cnn2d", seed=1)
    spec = permutation_spec(a, n_features)
    rows = torch.randn(200, n_features, dtype=torch.float64)
    aligned = permute(b, activation_matching(a, b, spec, rows.numpy()), spec)

    def gap(x, y):  # the squared distance of the last convolutional block's outputs
        images = rows.reshape(len(rows), *a.input_shape)
        with torch.no_grad():
            return float((x.features(images) - y.features(images)).pow(2).sum())

    assert gap(a, aligned) < gap(a, b)


def test_activation_matching_checks_its_rows_and_networks():
    network, n_features = chain("mlp")
    spec = permutation_spec(network, n_features)
    with pytest.raises(ValueError, match="inputs must be a 2-D array"):
        activation_matching(network, network, spec, np.zeros(n_features))
    with pytest.raises(ValueError, match=r"inputs of shape \(4, 3\) do not fit the network"):
        activation_matching(network, network, spec, np.zeros((4, 3)))
    wider = build_backbone("mlp", n_features, 5, {"hidden": (16, 9)}).double()
    with pytest.raises(ValueError, match="9 channels, not the 8 units of hidden layer 1"):
        activation_matching(network, wider, spec, np.zeros((4, n_features)))


def test_weight_matching_brings_independent_networks_closer():
    a, n_features = chain("mlp", seed=0)
    b, _ = chain("mlp", seed=1)
    spec = permutation_spec(a, n_features)
    aligned = permute(b, weight_matching(a, b, spec), spec)

    def distance(x, y):
        return sum(float((x.state_dict()[k] - y.state_dict()[k]).pow(2).sum()) for k in spec.axes)

    assert distance(a, aligned) < distance(a, b)


def test_the_spec_names_the_axes_a_dense_layer_after_a_flattened_convolution_reads_in_blocks():
    network, n_features = chain("cnn2d")
    spec = permutation_spec(network, n_features)
    # 8x8 input, two pooled blocks: the first dense layer reads 16 channels x 2 x 2 positions
    assert network.state_dict()["head.1.weight"].shape[1] == 16 * 4
    assert spec.axes["head.1.weight"] == (4, 3)
    assert spec.sizes == (8, 8, 16, 16, 16)


@pytest.mark.parametrize(
    ("network", "n_features", "match"),
    [
        (build_backbone("resnet", 20, 3, {"channels": (8, 16)}), 20, "not one chain"),
        (Packed("mlp", n_members=2)(12, 3), 12, "ensemble inside one network"),
        (nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2)), 4, "LayerNorm"),
        (nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=1), nn.Linear(4, 2)), 4, "Softmax"),
        (nn.Sequential(nn.ReLU()), 4, "no Linear"),
    ],
    ids=["resnet", "packed", "layernorm", "unknown-layer", "no-layer"],
)
def test_networks_the_alignment_does_not_know_are_refused_by_name(network, n_features, match):
    with pytest.raises(ValueError, match=match):
        permutation_spec(network, n_features)


class Residual(nn.Module):
    """Layers in a chain, but a forward that adds a skip connection."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.second = nn.Linear(4, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        h = torch.relu(self.first(x))
        return self.out(h + self.second(h))


def test_a_forward_that_is_not_the_chain_of_its_layers_is_caught_by_the_check():
    with pytest.raises(ValueError, match="changes its outputs"):
        permutation_spec(Residual(), 4)


def test_permutations_are_checked():
    network, n_features = chain("mlp")
    spec = permutation_spec(network, n_features)
    with pytest.raises(ValueError, match="one permutation per hidden layer"):
        permute(network, [np.arange(16)], spec)
    with pytest.raises(ValueError, match=r"permutations\[1\] must be a permutation of range\(8\)"):
        permute(network, [np.arange(16), np.zeros(8, dtype=int)], spec)


def test_average_networks_weighs_each_entry_and_keeps_integer_counts():
    a, _ = chain("mlp_bn", seed=0)
    b, _ = chain("mlp_bn", seed=1)
    mean = average_networks([a, b], [3, 1])
    for key, value in mean.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(
                value, 0.75 * a.state_dict()[key] + 0.25 * b.state_dict()[key]
            )
        else:
            assert torch.equal(value, a.state_dict()[key])
    assert (
        a.state_dict()["layers.0.weight"].data_ptr()
        != mean.state_dict()["layers.0.weight"].data_ptr()
    )
    with pytest.raises(ValueError, match="non-negative"):
        average_networks([a, b], [1, -1])
    with pytest.raises(ValueError, match="at least one"):
        average_networks([])


def test_refresh_batch_norm_computes_the_statistics_of_the_rows():
    network, n_features = chain("mlp_bn")
    assert has_batch_norm(network) and not has_batch_norm(nn.Linear(2, 2))
    rows = np.random.RandomState(0).standard_normal((1024, n_features))
    refresh_batch_norm(network, rows)  # two equal batches: their mean is the rows' mean
    first = network.layers[0](torch.from_numpy(rows))
    torch.testing.assert_close(network.layers[1].running_mean, first.mean(dim=0))
    assert not network.training
    refresh_batch_norm(network, np.vstack([rows, rows[:1]]))  # a last batch of one row folds in
    with pytest.raises(ValueError, match="at least 2 rows"):
        refresh_batch_norm(network, rows[:1])
