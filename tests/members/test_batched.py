"""The batched engine: each member trained together is the model it would be alone."""

import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone

from members import (
    MLP,
    BatchedMemberModule,
    CNN1d,
    MemberModule,
    NeuralClassifier,
    NeuralRegressor,
    StackedNetworks,
    fit_batched,
    replicate,
)
from members.batched import AUTO_CPU_MAX_PARAMETERS, MemberBatches, prefer_batched
from members.persistence import load, save


def _networks(factory, n):
    networks = []
    for seed in range(n):
        torch.manual_seed(seed)
        networks.append(factory())
    return networks


# Adam divides by the gradient's own size: on a bias that batch norm cancels the gradient is
# rounding noise, and Adam turns noise into a full step. So Adam is checked on networks
# without batch norm, and the batch-norm networks with SGD.
@pytest.mark.parametrize(
    "factory, shape, optimizer",
    [
        (lambda: MLP(6, 3, hidden=(16, 16)), (12, 6), "adamw"),
        (lambda: MLP(6, 3, hidden=(16, 16)), (12, 6), "rmsprop"),
        (lambda: MLP(6, 3, hidden=(16, 16), batch_norm=True), (12, 6), "sgd"),
        (lambda: CNN1d(16, 3, channels=(4, 8)), (12, 16), "sgd"),
    ],
    ids=["mlp-adamw", "mlp-rmsprop", "mlp-batchnorm-sgd", "cnn1d-sgd"],
)
@pytest.mark.parametrize("method", ["vmap", "auto"])  # auto: bmm for the MLPs
@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_one_batched_step_equals_each_members_own_step(factory, shape, optimizer, method):
    """Same data and seed: one batched step updates every member (weights and batch-norm
    statistics) as its own separate step does."""
    n = 3
    alone = _networks(factory, n)
    stacked = StackedNetworks(copy.deepcopy(alone), method=method)
    settings = {"optimizer": optimizer, "lr": 0.05, "weight_decay": 0.01, "scheduler": "constant"}
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=generator)  # a different batch for every member
    y = torch.randint(0, 3, (n, shape[0]), generator=generator)

    batched = BatchedMemberModule(stacked, **settings)
    step = batched.configure_optimizers()
    step.zero_grad()
    batched.training_step((x, y), 0).backward()
    step.step()

    for m, network in enumerate(alone):
        single = MemberModule(network, **settings)
        own = single.configure_optimizers()
        own.zero_grad()
        single.training_step((x[m], y[m]), 0).backward()
        own.step()
    for m, network in enumerate(stacked.unstack()):
        expected = dict(alone[m].state_dict())
        for name, tensor in network.state_dict().items():
            torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6, msg=name)


def test_stacked_networks_methods():
    mlp, cnn = MLP(4, 2, hidden=(8,)), CNN1d(8, 2, channels=(4,))
    assert StackedNetworks([mlp, mlp]).method == "bmm"
    assert StackedNetworks([mlp, mlp], method="vmap").method == "vmap"
    assert StackedNetworks([cnn, cnn]).method == "vmap"
    # an activation the batched-matmul path does not know: vmap
    odd = MLP(4, 2, hidden=(8,))
    odd.layers[1] = torch.nn.Softmax(dim=-1)
    assert StackedNetworks([odd, odd]).method == "vmap"
    with pytest.raises(ValueError, match="method='bmm' needs a members.MLP"):
        StackedNetworks([cnn, cnn], method="bmm")
    with pytest.raises(ValueError, match=r"'method' parameter of StackedNetworks .* Got 'fast'"):
        StackedNetworks([mlp], method="fast")
    with pytest.raises(ValueError, match="at least one network"):
        StackedNetworks([])


def test_member_batches_give_each_member_its_own_loader_order():
    rows = [None, np.array([3, 3, 0, 1, 2, 4, 4])]
    sampler = MemberBatches(rows, n_samples=7, batch_size=3, seeds=[5, 6])
    batches = list(sampler)
    # 7 rows in batches of 3: a last batch of one sample is dropped, as for one member alone
    assert [b.shape for b in batches] == [(2, 3), (2, 3)]
    own = torch.randperm(7, generator=torch.Generator().manual_seed(5))[:6]
    torch.testing.assert_close(torch.cat([b[0] for b in batches]), own)
    order = torch.randperm(7, generator=torch.Generator().manual_seed(6))[:6]
    torch.testing.assert_close(torch.cat([b[1] for b in batches]), torch.as_tensor(rows[1])[order])


@pytest.mark.parametrize("bootstrap", [False, True])
def test_batched_members_match_members_trained_alone(classification_data, bootstrap):
    X, y = classification_data
    template = NeuralClassifier(
        "mlp", module_kwargs={"hidden": (32,)}, max_epochs=4, batch_size=64, random_state=3
    )
    members = [m for _, m in replicate(template, 3, bootstrap=bootstrap)]
    alone = [clone(m).fit(X, y) for m in members]
    together = fit_batched([clone(m) for m in members], X, y)
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-4)
        assert type(b.model_) is type(a.model_) and b.model_.training is False
        assert next(b.model_.parameters()).dtype == torch.float64
    # the members are not copies of each other
    first, second = (m.predict_proba(X) for m in together[:2])
    assert np.abs(first - second).max() > 1e-2


@pytest.mark.parametrize("loss", [None, "gaussian"])
def test_batched_regressors_match_regressors_trained_alone(regression_data, loss):
    X, y = regression_data
    template = NeuralRegressor(
        module_kwargs={"hidden": (16,)}, loss=loss, max_epochs=3, random_state=0
    )
    members = [m for _, m in replicate(template, 2)]
    alone = [clone(m).fit(X, y) for m in members]
    together = fit_batched([clone(m) for m in members], X, y)
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-4, atol=1e-3)
        if loss == "gaussian":
            np.testing.assert_allclose(
                a.predict(X, return_std=True)[1], b.predict(X, return_std=True)[1], rtol=1e-3
            )


def test_dropout_masks_differ_between_members(classification_data):
    """With dropout, members with one initialisation still come out different."""
    X, y = classification_data
    same_init = NeuralClassifier(
        module_kwargs={"hidden": (32,), "dropout": 0.5}, max_epochs=2, random_state=0
    )
    for method in ("vmap", "bmm"):
        twins = _networks(lambda: MLP(8, 3, hidden=(32,), dropout=0.5), 1) * 2
        stacked = StackedNetworks(twins, method=method)
        x = torch.randn(5, 8).expand(2, 5, 8)  # the same batch for both members
        stacked.train()
        out = stacked(x)
        assert not torch.allclose(out[0], out[1]), method
        stacked.eval()
        out = stacked(x)
        torch.testing.assert_close(out[0], out[1])
    fitted = fit_batched([clone(same_init), clone(same_init)], X, y)
    assert not np.allclose(fitted[0].predict_proba(X), fitted[1].predict_proba(X))


def test_unstacked_members_save_load_and_distill(classification_data, tmp_path):
    X, y = classification_data
    members = [m for _, m in replicate(NeuralClassifier("cnn1d", max_epochs=2, random_state=0), 2)]
    fitted = fit_batched(members, X, y)
    save(fitted[1], tmp_path / "member")
    np.testing.assert_array_equal(
        load(tmp_path / "member").predict_proba(X), fitted[1].predict_proba(X)
    )
    student = NeuralClassifier(max_epochs=2, random_state=0)
    student.fit_distill(X, fitted[0].predict_proba(X), y)
    assert student.predict(X).shape == y.shape


def test_divergence_names_the_member(classification_data):
    X, y = classification_data
    members = [m for _, m in replicate(NeuralClassifier(lr=1e8, max_epochs=3, random_state=0), 2)]
    with pytest.raises(FloatingPointError, match="loss of .*'b'.*lower the learning rate"):
        fit_batched(members, X, y, names=["'a'", "'b'"])


def test_fit_batched_rejects_members_it_cannot_train_together(classification_data):
    X, y = classification_data
    a, b = NeuralClassifier(random_state=0), NeuralClassifier(lr=0.1, random_state=1)
    with pytest.raises(ValueError, match=r"differ only in random_state.*\['lr'\]"):
        fit_batched([a, b], X, y)
    with pytest.raises(ValueError, match=r"differ in \['class'\]"):
        fit_batched([NeuralClassifier(), NeuralRegressor()], X, y)
    from lightning.pytorch.callbacks import Callback

    with pytest.raises(TypeError, match="without callbacks"):
        fit_batched([NeuralClassifier(callbacks=[Callback()])] * 2, X, y)
    with pytest.raises(ValueError, match="at least one"):
        fit_batched([], X, y)
    with pytest.raises(ValueError, match="names must name every estimator"):
        fit_batched([NeuralClassifier(), NeuralClassifier()], X, y, names=["one"])


def test_replicate():
    members = replicate(NeuralClassifier("cnn1d", random_state=7), 3)
    assert [name for name, _ in members] == ["cnn1d_0", "cnn1d_1", "cnn1d_2"]
    assert [m.random_state for _, m in members] == [7, 8, 9]
    assert all(not m.bootstrap for _, m in members)
    assert [m.random_state for _, m in replicate(NeuralClassifier(), 2)] == [None, None]
    drawn = replicate(NeuralClassifier(), 2, name="net")
    assert [name for name, _ in drawn] == ["net_0", "net_1"]
    seeded = [
        m.random_state
        for _, m in replicate(NeuralClassifier(random_state=np.random.RandomState(0)), 3)
    ]
    assert len(set(seeded)) == 3
    with pytest.raises(ValueError, match=r"'n' parameter of replicate .* \[1, inf\)\. Got 0 "):
        replicate(NeuralClassifier(), 0)
    with pytest.raises(TypeError, match="'bootstrap' parameter of replicate .* Got 'yes' "):
        replicate(NeuralClassifier(), 2, bootstrap="yes")
    from sklearn.linear_model import LinearRegression

    with pytest.raises(TypeError, match="random_state parameter"):
        replicate(LinearRegression(), 2)


def test_bootstrap_trains_on_a_sample_drawn_from_the_seed(classification_data):
    X, y = classification_data
    a = NeuralClassifier(max_epochs=2, bootstrap=True, random_state=0).fit(X, y)
    b = NeuralClassifier(max_epochs=2, bootstrap=True, random_state=0).fit(X, y)
    full = NeuralClassifier(max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.allclose(a.predict_proba(X), full.predict_proba(X))
    with pytest.raises(TypeError, match=r"'bootstrap' parameter of NeuralClassifier .* Got 'yes' "):
        NeuralClassifier(bootstrap="yes").fit(X, y)


def test_auto_batches_small_networks_on_the_cpu_only():
    small = NeuralClassifier("mlp", accelerator="cpu")
    wide = NeuralClassifier("mlp", module_kwargs={"hidden": (1024, 1024)}, accelerator="cpu")
    assert prefer_batched(small, 8, 40, 10)
    assert not prefer_batched(small, 1, 40, 10)
    assert not prefer_batched(wide, 8, 40, 10)
    assert sum(p.numel() for p in MLP(40, 10, hidden=(1024, 1024)).parameters()) > (
        AUTO_CPU_MAX_PARAMETERS
    )
    assert prefer_batched(
        NeuralClassifier("mlp", module_kwargs={"hidden": (1024, 1024)}, accelerator="gpu"),
        2,
        40,
        10,
    )


@pytest.mark.gpu
def test_batched_training_on_the_gpu_matches_the_cpu(classification_data):
    X, y = classification_data
    template = NeuralClassifier("cnn1d", max_epochs=2, random_state=0)
    on_cpu = fit_batched([m for _, m in replicate(template.set_params(accelerator="cpu"), 4)], X, y)
    on_gpu = fit_batched([m for _, m in replicate(template.set_params(accelerator="gpu"), 4)], X, y)
    for a, b in zip(on_cpu, on_gpu, strict=True):
        assert next(b.model_.parameters()).device.type == "cpu"
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=2e-2)


def test_mnist1d_members_are_as_accurate_batched_as_alone():
    """Acceptance: mean member test accuracy within 1 pp of sequential training."""
    from experiments.data import load_mnist1d

    X_train, y_train, X_test, y_test = load_mnist1d()
    template = NeuralClassifier("mlp", max_epochs=10, accelerator="cpu", random_state=0)
    members = [m for _, m in replicate(template, 4)]
    alone = [clone(m).fit(X_train, y_train).score(X_test, y_test) for m in members]
    together = [m.score(X_test, y_test) for m in fit_batched(members, X_train, y_train)]
    assert abs(np.mean(alone) - np.mean(together)) <= 0.01
    assert len(set(together)) > 1  # the members are different models


def test_auto_trains_apart_a_network_it_cannot_size():
    def needs_storage(n_features, n_outputs):
        network = torch.nn.Linear(n_features, n_outputs)
        network.weight.data.numpy()  # fails on the meta device
        return network

    assert not prefer_batched(NeuralClassifier(needs_storage, accelerator="cpu"), 4, 8, 3)
    assert prefer_batched(NeuralClassifier("mlp", accelerator="cpu"), 4, 8, 3)
