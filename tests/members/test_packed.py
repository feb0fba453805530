"""Packed-Ensembles' layers: parameter counts against the paper's formulas, and with gamma=1 the
packed network equals M independent networks given the same weights."""

import pytest
import torch
from torch import nn

from members import Packed, build_backbone
from members.packed import PackedLinear, group_layers, packed_width
from members.subnetworks import SubNetworks

# base backbone, its input size, its widths (the packed network has alpha times them)
BACKBONES = {
    "mlp": (12, {"hidden": (16, 8)}),
    "cnn1d": (20, {"channels": (8, 16, 16)}),
    "cnn2d": (64, {"channels": (8, 16), "hidden": (16,)}),
    "resnet": (20, {"channels": (8, 16), "blocks_per_stage": 2}),
}


def test_packed_linear_equals_groups_linear_layers_side_by_side():
    torch.manual_seed(0)
    layer = PackedLinear(6, 4, groups=2)
    x = torch.randn(5, 6)
    parts = []
    for g in range(2):
        linear = nn.Linear(3, 2)
        linear.weight.data = layer.weight[2 * g : 2 * g + 2].detach().clone()
        linear.bias.data = layer.bias[2 * g : 2 * g + 2].detach().clone()
        parts.append(linear(x[:, 3 * g : 3 * g + 3]))
    torch.testing.assert_close(layer(x), torch.cat(parts, dim=1))


def paper_count(sizes, n_members, alpha, gamma, *, kernel=1, batch_norm=False, bias=True):
    """Parameters of a packed stack of layers ``sizes[0] -> sizes[1] -> ...`` by the paper's
    formulas (Laurent et al., 2023, section 3): the first layer ``C_in * alpha C_out * k``
    (the input is not grouped), an inner layer ``alpha C_in * alpha C_out * k / (M gamma)``;
    the last ``alpha C_in * M C_out * k / M`` (here M groups whatever gamma, so that each
    sub-network's outputs read all its channels); plus a bias per output and batch norm's two
    per hidden channel."""
    total = 0
    last = len(sizes) - 2
    for index, (c_in, c_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        if index == 0:
            weights, outputs = c_in * alpha * c_out * kernel, alpha * c_out
        elif index == last:
            weights, outputs = (
                alpha * c_in * n_members * c_out * kernel / n_members,
                n_members * c_out,
            )
        else:
            weights = alpha * c_in * alpha * c_out * kernel / (n_members * gamma)
            outputs = alpha * c_out
        total += weights + (outputs if bias else 0)
        if batch_norm and index != last:
            total += 2 * outputs
    return total


@pytest.mark.parametrize(("n_members", "alpha", "gamma"), [(4, 2, 1), (2, 3, 1), (4, 2, 2)])
def test_mlp_parameters_match_the_papers_formula(n_members, alpha, gamma):
    network = Packed("mlp", n_members=n_members, alpha=alpha, gamma=gamma)(12, 5, hidden=(16, 8))
    count = sum(p.numel() for p in network.parameters())
    assert count == paper_count([12, 16, 8, 5], n_members, alpha, gamma)


@pytest.mark.parametrize(("n_members", "alpha", "gamma"), [(4, 2, 1), (4, 2, 2)])
def test_conv_parameters_match_the_papers_formula(n_members, alpha, gamma):
    # cnn1d: a 5-wide first convolution, 3-wide ones after it, each batch-normalised, then the
    # linear head: the convolutions and the head are counted apart (their kernels differ)
    network = Packed("cnn1d", n_members=n_members, alpha=alpha, gamma=gamma)(
        20, 5, channels=(8, 16, 16)
    )
    count = sum(p.numel() for p in network.parameters())
    first = 1 * alpha * 8 * 5 + alpha * 8 + 2 * alpha * 8
    inner = sum(
        alpha * c_in * alpha * c_out * 3 / (n_members * gamma) + 3 * alpha * c_out
        for c_in, c_out in [(8, 16), (16, 16)]
    )
    head = alpha * 16 * 5 + n_members * 5
    assert count == first + inner + head


@pytest.mark.parametrize("base", sorted(BACKBONES))
def test_with_gamma_one_the_packed_network_is_m_independent_networks(base):
    n_features, widths = BACKBONES[base]
    n_members, alpha, n_outputs = 4, 2, 3
    torch.manual_seed(0)
    packed = Packed(base, n_members=n_members, alpha=alpha)(n_features, n_outputs, **widths)
    # each member: alpha / M of the base's widths, as its own network
    member_widths = {
        key: tuple(alpha * w // n_members for w in value)
        if key in ("hidden", "channels")
        else value
        for key, value in widths.items()
    }
    members = [build_backbone(base, n_features, n_outputs, member_widths) for _ in range(n_members)]
    # random batch-norm statistics, so that eval mode tests them too
    for network in members:
        for module in network.modules():
            if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    state = packed.network.state_dict()
    for name, tensor in state.items():
        if tensor.dim() == 0:  # num_batches_tracked
            continue
        blocks = [network.state_dict()[name] for network in members]
        size = blocks[0].shape[0]
        assert tensor.shape[0] == n_members * size, name
        assert tensor.shape[1:] == blocks[0].shape[1:], name
        for m, block in enumerate(blocks):
            tensor[m * size : (m + 1) * size] = block
    packed.eval()
    x = torch.randn(7, n_features)
    with torch.no_grad():
        together = packed(x)
        apart = torch.stack([network.eval()(x) for network in members])
    assert together.shape == (n_members, 7, n_outputs)
    assert (together - apart).abs().max().item() <= 1e-6


def test_packed_is_a_sub_network_module_with_one_output_per_member():
    network = Packed("cnn1d", n_members=3, alpha=3)(20, 4, channels=(8, 16))
    assert isinstance(network, SubNetworks) and network.n_members == 3
    assert network.eval()(torch.zeros(2, 20)).shape == (3, 2, 4)


def test_widths_round_up_to_whole_groups():
    assert packed_width(10, 1.5, 4) == 16
    network = Packed("mlp", n_members=3, alpha=2)(6, 2, hidden=(10,))
    assert network.network.layers[0].out_features == 21  # 20 rounded up to a multiple of 3


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Packed(lambda n, k: nn.Sequential(nn.Linear(n, k)))(4, 2), "hidden or channels"),
        (lambda: Packed("mlp", alpha=0)(4, 2), "alpha"),
        (lambda: Packed("mlp", gamma=0)(4, 2), "gamma"),
        (lambda: Packed("mlp", n_members=0)(4, 2), "n_members"),
        (lambda: Packed(Packed("mlp"))(4, 2), "do not nest"),
    ],
)
def test_bad_packings_are_refused_by_name(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_a_layer_packing_cannot_group_is_refused():
    network = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="LayerNorm"):
        group_layers(network, 2, 1)
