"""Structure knobs of the neural members (issue 18, point 4): an L1 penalty that makes weights
sparse, and scikit-learn-style early stopping that stops on a held-out split and keeps the
best epoch."""

import numpy as np
import pytest
import torch

from ensembles import EnsembleClassifier
from members import NeuralClassifier, NeuralRegressor
from members.batched import can_batch

rng = np.random.RandomState(0)
X_sparse = rng.randn(400, 20).astype(np.float32)
y_sparse = 3 * X_sparse[:, 0] - 2 * X_sparse[:, 1] + 0.1 * rng.randn(400)


def first_layer(estimator):
    return next(p for p in estimator.model_.parameters() if p.ndim == 2).detach().abs()


def linear(l1):
    return NeuralRegressor(
        module_kwargs={"hidden": (8,)},
        max_epochs=60,
        weight_decay=0.0,
        l1=l1,
        random_state=0,
    ).fit(X_sparse, y_sparse)


def test_l1_drives_the_weights_of_useless_inputs_towards_zero():
    plain, sparse = first_layer(linear(0.0)), first_layer(linear(5e-2))
    useless_plain, useless_sparse = plain[:, 2:].mean(), sparse[:, 2:].mean()
    assert useless_sparse < 0.1 * useless_plain
    # the inputs that matter keep weights an order of magnitude above the rest
    assert sparse[:, :2].mean() > 10 * useless_sparse
    assert (sparse[:, 2:] < 1e-2).float().mean() > 0.8


def test_the_penalty_is_l1_times_the_absolute_weights():
    from members.module import MemberModule

    network = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    module = MemberModule(network, l1=0.5)
    expected = 0.5 * network[0].weight.abs().sum()  # biases and the norm's scale left alone
    torch.testing.assert_close(module.penalty(), expected)
    assert MemberModule(network).penalty() == 0.0


def test_early_stopping_stops_on_noise_and_keeps_the_best_epoch():
    X = rng.randn(300, 10).astype(np.float32)
    noise = rng.randint(0, 2, 300)  # labels with nothing to learn
    stopped = NeuralClassifier(
        max_epochs=200, early_stopping=True, n_iter_no_change=5, random_state=0
    ).fit(X, noise)
    assert stopped.n_iter_ < 200
    full = NeuralClassifier(max_epochs=20, random_state=0).fit(X, noise)
    assert full.n_iter_ == 20
    # reproducible: the held-out rows come from random_state
    again = NeuralClassifier(
        max_epochs=200, early_stopping=True, n_iter_no_change=5, random_state=0
    ).fit(X, noise)
    assert again.n_iter_ == stopped.n_iter_
    np.testing.assert_array_equal(again.predict_proba(X), stopped.predict_proba(X))


def test_early_stopping_members_train_on_their_own_in_an_ensemble():
    members = [
        (f"m{i}", NeuralClassifier(max_epochs=30, early_stopping=True, random_state=i))
        for i in range(2)
    ]
    assert not can_batch(members[0][1])
    X = rng.randn(200, 6).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    ensemble = EnsembleClassifier(members, batched=True).fit(X, y)
    assert all(member.n_iter_ <= 30 for member in ensemble.members_)
    assert ensemble.score(X, y) > 0.8


@pytest.mark.parametrize(
    "params, match",
    [
        ({"l1": -1.0}, r"'l1' parameter of NeuralClassifier .* Got -1.0"),
        ({"validation_fraction": 1.0}, r"'validation_fraction' parameter .* Got 1.0"),
        ({"n_iter_no_change": 0}, r"'n_iter_no_change' parameter .* Got 0"),
        ({"early_stopping": "yes"}, r"'early_stopping' parameter .* Got 'yes'"),
    ],
)
def test_bad_structure_knobs(params, match):
    with pytest.raises(ValueError, match=match):
        NeuralClassifier(max_epochs=1, **params).fit(X_sparse, y_sparse > 0)


def test_a_split_that_leaves_no_rows_is_refused():
    with pytest.raises(ValueError, match=r"validation_fraction=0.9 leaves 0 rows to train"):
        NeuralClassifier(max_epochs=1, early_stopping=True, validation_fraction=0.9).fit(
            X_sparse[:2], [0, 1]
        )
