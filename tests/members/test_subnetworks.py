"""BatchEnsemble, MIMO and MC-Dropout networks, and training a network of sub-networks through
the ordinary training seam (members.subnetworks)."""

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from members import MIMO, BatchEnsemble, MCDropout, NeuralClassifier, NeuralRegressor, Packed
from members.batch_ensemble import EnsembleBatchNorm, Rank1Layer
from members.registry import build_backbone
from members.subnetworks import SubNetworkModule, replace_module

BASES = {
    "mlp": (12, {"hidden": (16, 8)}),
    "cnn1d": (20, {"channels": (8, 16)}),
    "cnn2d": (64, {"channels": (4, 8), "hidden": (16,)}),
    "resnet": (20, {"channels": (8, 16)}),
}
TRANSFORMS = {
    "packed": Packed,
    "batchensemble": BatchEnsemble,
    "mimo": MIMO,
    "mc_dropout": MCDropout,
}


@pytest.mark.parametrize("base", sorted(BASES))
def test_batch_ensemble_with_fast_weights_one_is_the_shared_network(base):
    n_features, widths = BASES[base]
    torch.manual_seed(0)
    shared = build_backbone(base, n_features, 3, widths)
    network = BatchEnsemble(base, n_members=4)(n_features, 3, **widths)
    wrapped = network.network
    # the shared weights of the base, every fast weight 1, every member's bias the base's
    layers = [m for m in wrapped.modules() if isinstance(m, Rank1Layer)]
    bases = [m for m in shared.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]
    assert len(layers) == len(bases)
    for layer, base_layer in zip(layers, bases, strict=True):
        layer.layer.weight.data.copy_(base_layer.weight.data)
        layer.r.data.fill_(1.0)
        layer.s.data.fill_(1.0)
        if layer.bias is not None:
            layer.bias.data.copy_(base_layer.bias.data.expand_as(layer.bias))
    norms = [m for m in wrapped.modules() if isinstance(m, EnsembleBatchNorm)]
    bases_norms = [m for m in shared.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    assert len(norms) == len(bases_norms)
    for norm, base_norm in zip(norms, bases_norms, strict=True):
        base_norm.running_mean.uniform_(-1, 1)  # random statistics, so that eval tests them
        base_norm.running_var.uniform_(0.5, 2)
        for name, value in base_norm.state_dict().items():
            norm.norm.state_dict()[name].copy_(value.repeat(4) if value.dim() else value)
    x = torch.randn(6, n_features)
    for mode in ("eval", "train"):  # train: each member's batch statistics
        getattr(network, mode)()
        getattr(shared, mode)()
        with torch.no_grad():
            together, alone = network(x), shared(x)
        assert together.shape == (4, 6, 3)
        assert (together - alone).abs().max().item() <= 1e-6, mode


@pytest.mark.parametrize(
    ("norm", "shape"),
    [(nn.BatchNorm1d, (5, 3)), (nn.BatchNorm1d, (5, 3, 7)), (nn.BatchNorm2d, (5, 3, 4, 4))],
)
@pytest.mark.parametrize("affine", [True, False])
def test_each_member_norm_is_its_own_batch_norm(norm, shape, affine):
    # the prediction path (one affine pass) and the training path (batch statistics) against
    # one plain batch norm per member, each with statistics and an affine map of its own
    torch.manual_seed(0)
    members = [norm(shape[1], affine=affine) for _ in range(3)]
    for member in members:
        member.running_mean.uniform_(-1, 1)
        member.running_var.uniform_(0.5, 2)
        if affine:
            nn.init.uniform_(member.weight, 0.5, 1.5)
            nn.init.uniform_(member.bias, -1, 1)
    together = EnsembleBatchNorm(norm(shape[1], affine=affine), n_members=3)
    for name in together.norm.state_dict():
        values = [member.state_dict()[name] for member in members]
        stacked = torch.cat(values) if values[0].dim() else values[0]
        together.norm.state_dict()[name].copy_(stacked)
    x = torch.randn(3 * shape[0], *shape[1:])
    for mode in ("eval", "train"):
        with torch.no_grad():
            out = getattr(together, mode)()(x)
            alone = torch.cat([getattr(m, mode)()(part) for m, part in zip(members, x.chunk(3))])
        assert (out - alone).abs().max().item() <= 1e-5, mode


def test_batch_ensemble_adds_a_few_parameters_per_member():
    base = build_backbone("cnn1d", 40, 10)
    network = BatchEnsemble("cnn1d", n_members=4)(40, 10)
    ratio = sum(p.numel() for p in network.parameters()) / sum(p.numel() for p in base.parameters())
    assert 1.0 < ratio < 1.15  # fast weights, biases and batch norms per member: 1.11x


@pytest.mark.parametrize("base", sorted(BASES))
def test_mc_dropout_with_p_zero_is_the_plain_network(base):
    n_features, widths = BASES[base]
    torch.manual_seed(0)
    plain = build_backbone(base, n_features, 3, {**widths, "dropout": 0.5})
    network = MCDropout(base, n_samples=5)(n_features, 3, **widths, dropout=0.5)
    network.network.load_state_dict(plain.state_dict())
    for layer in network.dropouts:
        layer.p = 0.0
    x = torch.randn(6, n_features)
    with torch.no_grad():
        passes = network.eval()(x)
        alone = plain.eval()(x)
    assert passes.shape == (5, 6, 3)
    assert (passes - alone).abs().max().item() <= 1e-6


def test_mc_dropout_passes_are_fixed_thinned_networks():
    network = MCDropout("mlp", n_samples=6, seed=3)(8, 3, hidden=(32,), dropout=0.5).eval()
    x = torch.randn(20, 8)
    with torch.no_grad():
        first, again = network(x), network(x)
        subset = network(x[[5, 2]])
    torch.testing.assert_close(first, again)  # deterministic
    torch.testing.assert_close(subset, first[:, [5, 2]])  # a row's output ignores its batch
    assert (first[0] - first[1]).abs().max() > 1e-3  # the passes differ


def test_mc_dropout_needs_dropout_layers():
    with pytest.raises(ValueError, match="Dropout layers"):
        MCDropout("mlp")(4, 2, hidden=(8,))


@pytest.mark.parametrize("base", sorted(BASES))
def test_mc_dropout_with_fixed_masks_predicts_as_its_passes(base):
    n_features, widths = BASES[base]
    torch.manual_seed(0)
    network = MCDropout(base, n_samples=5, seed=2)(n_features, 3, **widths, dropout=0.5).eval()
    fixed = network.with_fixed_masks(torch.zeros(1, n_features))
    assert not any(isinstance(m, nn.Dropout) for m in fixed.modules())
    for rows in (1, 9):
        x = torch.randn(rows, n_features)
        with torch.no_grad():
            torch.testing.assert_close(fixed(x), network(x), rtol=0, atol=1e-6)
    network.train().with_fixed_masks(torch.zeros(1, n_features))
    assert network.training  # left in the mode it was in


@pytest.mark.parametrize("base", sorted(BASES))
def test_mc_dropout_passes_fork_at_the_first_dropout_layer_and_predict_the_same(base):
    n_features, widths = BASES[base]
    network = MCDropout(base, n_samples=5, seed=1)(n_features, 3, **widths, dropout=0.5).eval()
    assert network.forks  # every backbone treats rows apart
    x = torch.randn(9, n_features)
    with torch.no_grad():
        forked = network(x)
        network.forks = False
        one_after_another = network(x)
    torch.testing.assert_close(forked, one_after_another, rtol=0, atol=1e-6)


class MixesAcrossTheFork(nn.Module):
    """A user's network that adds rows from before its dropout layer to rows after it."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.hidden = nn.Linear(n_features, 16)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(16, n_outputs)

    def forward(self, x):
        h = torch.relu(self.hidden(x))
        return self.out(h + self.drop(h))


def test_a_network_that_cannot_fork_runs_its_passes_one_after_another():
    network = MCDropout(MixesAcrossTheFork, n_samples=4, seed=0)(6, 2).eval()
    assert not network.forks
    x = torch.randn(7, 6)
    with torch.no_grad():
        passes = network(x)
        fixed = network.with_fixed_masks(x)(x)
    assert passes.shape == (4, 7, 2)
    assert (passes[0] - passes[1]).abs().max() > 1e-3  # the passes differ
    torch.testing.assert_close(fixed, passes, rtol=0, atol=1e-6)


def test_threads_predicting_with_one_mc_dropout_network_each_get_its_predictions():
    """The masks in force belong to the thread that predicts (a context variable), not to the
    shared layers: four threads at once each get what one thread gets (hooks on the shared
    layers gave wrong outputs in about 60 % of such calls)."""
    network = MCDropout("mlp", n_samples=8)(16, 3, hidden=(64, 64), dropout=0.5).eval()
    x = torch.randn(50, 16)
    with torch.no_grad():
        expected = network(x)

    def predict(_):
        with torch.no_grad():
            return [network(x) for _ in range(50)]

    with ThreadPoolExecutor(4) as pool:
        outputs = [output for batch in pool.map(predict, range(4)) for output in batch]
    for output in outputs:
        torch.testing.assert_close(output, expected, rtol=0, atol=1e-6)


def test_a_network_pickled_before_seeded_dropout_predicts_the_same():
    """Plain nn.Dropout layers (in eval mode) and no ``forks``: what an MC-Dropout network
    pickled by an earlier version holds; it gets seeded layers back at its first prediction."""
    network = MCDropout("mlp", n_samples=4, seed=1)(8, 3, hidden=(16, 16), dropout=0.5).eval()
    x = torch.randn(5, 8)
    with torch.no_grad():
        expected = network(x)
    for name, layer in list(network.network.named_modules()):
        if isinstance(layer, nn.Dropout):
            replace_module(network.network, name, nn.Dropout(layer.p).eval())
    network.dropouts = [m for m in network.network.modules() if isinstance(m, nn.Dropout)]
    del network.__dict__["forks"]
    with torch.no_grad():
        first, again = network(x), network(x)
    torch.testing.assert_close(first, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(again, expected, rtol=0, atol=1e-6)


class DropsTwice(nn.Module):
    """A user's network that calls one dropout layer twice per forward."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.drop = nn.Dropout(0.3)
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, x):
        return self.linear(self.drop(self.drop(x)))


def test_fixed_masks_refuse_a_dropout_layer_called_twice_by_name():
    network = MCDropout(DropsTwice, n_samples=3)(4, 2)
    with pytest.raises(ValueError, match="dropout layer 'drop' is called 2 times"):
        network.with_fixed_masks(torch.zeros(1, 4))
    network.eval()(torch.zeros(2, 4))  # the network itself still predicts


@pytest.mark.parametrize("base", sorted(BASES))
def test_mimo_reads_m_rows_and_gives_m_heads(base):
    n_features, widths = BASES[base]
    network = MIMO(base, n_members=3)(n_features, 4, **widths)
    assert network.eval()(torch.zeros(5, n_features)).shape == (3, 5, 4)


def identity(n_features, n_outputs):
    return nn.Identity()


def test_mimo_heads_learn_the_targets_of_their_own_rows():
    # an identity network: head m outputs the feature of the row it was given
    network = MIMO(identity, n_members=3, input_repetition=0.5, batch_repetition=2)(1, 1)
    x = torch.arange(8, dtype=torch.float32).reshape(8, 1)
    y = torch.arange(8)
    torch.manual_seed(0)
    outputs, targets, weights = network.training_outputs(x, y, torch.ones(8))
    assert outputs.shape == (3, 16, 1) and targets.shape == (3, 16) and weights.shape == (3, 16)
    torch.testing.assert_close(outputs[..., 0], targets.float())
    # head 0 sees every row twice (batch repetition); the others their own order but for the
    # positions repeated from head 0
    assert sorted(targets[0].tolist()) == sorted(list(range(8)) * 2)
    assert not torch.equal(targets[0], targets[1])
    network.input_repetition = 0.0
    _, targets, _ = network.training_outputs(x, y)
    for head in targets:
        assert sorted(head.tolist()) == sorted(list(range(8)) * 2)


def test_mimo_input_repetition_one_gives_every_head_the_same_rows():
    network = MIMO(identity, n_members=3, input_repetition=1.0)(1, 1)
    torch.manual_seed(0)
    _, targets, _ = network.training_outputs(torch.zeros(8, 1), torch.arange(8))
    assert torch.equal(targets[0], targets[1]) and torch.equal(targets[0], targets[2])


def test_the_module_sums_the_sub_networks_own_losses():
    torch.manual_seed(0)
    network = Packed("mlp", n_members=2)(4, 3, hidden=(8,))
    module = SubNetworkModule(network, task="classification")
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    losses = module.batch_losses((x, y))
    outputs = network(x)
    expected = torch.stack([nn.functional.cross_entropy(outputs[m], y) for m in range(2)])
    torch.testing.assert_close(losses, expected)
    # sub-network 0's loss moves only sub-network 0's block of the last layer
    losses[0].backward()
    grad = network.network.layers[-1].weight.grad
    assert grad[:3].abs().sum() > 0 and grad[3:].abs().sum() == 0


@pytest.mark.parametrize("method", sorted(TRANSFORMS))
def test_a_network_of_sub_networks_trains_through_the_seam_and_predicts_its_mixture(method):
    X, y = load_digits(return_X_y=True)
    transform = TRANSFORMS[method]("mlp")
    clf = NeuralClassifier(
        transform, module_kwargs={"hidden": (64,), "dropout": 0.1}, max_epochs=10, random_state=0
    ).fit(X[:600], y[:600])
    members = clf.sub_network_outputs(X[600:700])
    assert members.shape == (clf.sub_networks, 100, 10)
    np.testing.assert_allclose(clf.predict_proba(X[600:700]), members.mean(axis=0), atol=1e-12)
    assert clf.score(X[600:], y[600:]) > 0.7  # a plain network with these settings: 0.79
    # the teacher's float32 function predicts the mixture too
    np.testing.assert_allclose(clf.network_function()(X[600:700]), members.mean(axis=0), atol=1e-4)


def test_a_gaussian_regressor_of_sub_networks_predicts_the_mixtures_moments():
    X, y = load_digits(return_X_y=True)
    reg = NeuralRegressor(
        Packed("mlp", n_members=3), loss="gaussian", max_epochs=3, random_state=0
    ).fit(X[:600], y[:600].astype(float))
    mean, std = reg.predict(X[600:650], return_std=True)
    network = copy.deepcopy(reg.model_)
    inputs = torch.from_numpy(reg.network_inputs(X[600:650]).astype(np.float64))
    with torch.no_grad():
        outputs = network(inputs)
    means = outputs[..., :1] * reg.y_scale_[0] + reg.y_mean_[0]
    variances = (nn.functional.softplus(outputs[..., 1:]) + 1e-6) * reg.y_scale_[0] ** 2
    mixture_mean = means.mean(0)[:, 0].numpy()
    mixture_var = ((variances + means**2).mean(0) - means.mean(0) ** 2)[:, 0].numpy()
    np.testing.assert_allclose(mean, mixture_mean, rtol=1e-6)
    np.testing.assert_allclose(std**2, mixture_var, rtol=1e-4)


def test_a_network_of_sub_networks_cannot_be_a_student():
    X, y = load_digits(return_X_y=True)
    teacher = NeuralClassifier(max_epochs=1, random_state=0).fit(X, y)
    student = NeuralClassifier(Packed("mlp"), max_epochs=1)
    with pytest.raises(ValueError, match="cannot be distilled into"):
        student.fit_distill(X, teacher.predict_proba(X))
